"""The access seam: every /v2/ request is decided in one place, by the declared action."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moorage.app import Registry, build_web_app
from moorage.domain.errors import AccessDenied, Unauthenticated
from moorage.iam.actions import Action
from moorage.ports.access import AccessRequest, Credentials, Principal
from moorage.services.access import AnonymousAuthenticator, OpenAccess
from tests.api.conftest import REGISTRY_ID
from tests.api.oci import Client, digest_of, error_code, push_blob

pytestmark = pytest.mark.parametrize("backends", ["memory-sqlite"], indirect=True)


class RecordingAuthorizer:
    """Allows everything except the (action, repository) pairs in ``denied``; records asks."""

    def __init__(self) -> None:
        self.denied: set[tuple[Action, str | None]] = set()
        self.asked: list[tuple[Action, str | None]] = []

    async def authorize(self, request: AccessRequest) -> None:
        self.asked.append((request.action, request.repository))
        if (request.action, request.repository) in self.denied:
            raise AccessDenied(f"not allowed to {request.action} on {request.repository}")

    async def allowed_repositories(
        self, request: AccessRequest, repositories: Sequence[str]
    ) -> list[str]:
        self.asked += [(request.action, name) for name in repositories]
        return [name for name in repositories if (request.action, name) not in self.denied]


class TokenAuthenticator:
    """Accepts only ``Authorization: Bearer good``."""

    async def authenticate(self, credentials: Credentials) -> Principal:
        if credentials.authorization != "Bearer good":
            raise Unauthenticated("authentication required")
        return Principal(registry_id="000000000000", arn="arn:aws:iam::000000000000:user/tester")


@pytest.fixture
def authorizer() -> RecordingAuthorizer:
    return RecordingAuthorizer()


@pytest.fixture
async def client(registry: Registry, authorizer: RecordingAuthorizer) -> AsyncIterator[Client]:
    app = build_web_app(
        registry, authenticator=AnonymousAuthenticator(REGISTRY_ID), authorizer=authorizer
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


ROUTE_ACTIONS = [
    ("GET", "/v2/team/app/manifests/v1", Action.BATCH_GET_IMAGE),
    ("HEAD", "/v2/team/app/manifests/v1", Action.BATCH_GET_IMAGE),
    ("PUT", "/v2/team/app/manifests/v1", Action.PUT_IMAGE),
    ("DELETE", "/v2/team/app/manifests/v1", Action.BATCH_DELETE_IMAGE),
    ("GET", f"/v2/team/app/blobs/{digest_of(b'x')}", Action.GET_DOWNLOAD_URL_FOR_LAYER),
    ("HEAD", f"/v2/team/app/blobs/{digest_of(b'x')}", Action.BATCH_CHECK_LAYER_AVAILABILITY),
    ("DELETE", f"/v2/team/app/blobs/{digest_of(b'x')}", Action.BATCH_DELETE_IMAGE),
    ("POST", "/v2/team/app/blobs/uploads/", Action.INITIATE_LAYER_UPLOAD),
    (
        "PATCH",
        "/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000",
        Action.UPLOAD_LAYER_PART,
    ),
    (
        "GET",
        "/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000",
        Action.UPLOAD_LAYER_PART,
    ),
    (
        "DELETE",
        "/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000",
        Action.UPLOAD_LAYER_PART,
    ),
    (
        "PUT",
        "/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000",
        Action.COMPLETE_LAYER_UPLOAD,
    ),
    ("GET", "/v2/team/app/tags/list", Action.LIST_IMAGES),
    ("GET", f"/v2/team/app/referrers/{digest_of(b'x')}", Action.LIST_IMAGES),
]


@pytest.mark.parametrize(("method", "path", "action"), ROUTE_ACTIONS)
async def test_denied_action_is_403_before_the_handler_runs(
    client: Client, authorizer: RecordingAuthorizer, method: str, path: str, action: Action
) -> None:
    authorizer.denied.add((action, "team/app"))
    response = await client.request(
        method, path, data=b"{}" if method in {"PUT", "PATCH"} else None
    )
    assert response.status == 403
    if method != "HEAD":
        assert await error_code(response) == "DENIED"
    assert authorizer.asked == [(action, "team/app")]
    # Nothing happened: the repository was not even created by the push routes.
    catalog = await (await client.get("/v2/_catalog")).json()
    assert catalog["repositories"] == []


async def test_the_catalog_asks_about_each_repository(
    client: Client, authorizer: RecordingAuthorizer
) -> None:
    for name in ("team/app", "team/db"):
        await push_blob(client, name, b"x")
    authorizer.asked.clear()
    response = await client.get("/v2/_catalog")
    assert response.status == 200
    assert (await response.json())["repositories"] == ["team/app", "team/db"]
    assert authorizer.asked == [
        (Action.DESCRIBE_REPOSITORIES, "team/app"),
        (Action.DESCRIBE_REPOSITORIES, "team/db"),
    ]


async def test_the_catalog_lists_only_what_the_caller_may_describe(
    client: Client, authorizer: RecordingAuthorizer
) -> None:
    names = [f"team/app-{index:03}" for index in range(150)]
    for name in names:
        await push_blob(client, name, b"x")
    hidden = set(names[1::3])
    authorizer.denied.update((Action.DESCRIBE_REPOSITORIES, name) for name in hidden)
    visible = [name for name in names if name not in hidden]

    listed, url = [], "/v2/_catalog?n=30"
    while url:
        response = await client.get(url)
        assert response.status == 200
        listed += (await response.json())["repositories"]
        link = response.headers.get("Link", "")
        url = link[1 : link.index(">")] if link else ""
    assert listed == visible
    assert (await (await client.get("/v2/_catalog")).json())["repositories"] == visible


async def test_mount_from_an_unreadable_repository_falls_back_to_an_upload(
    client: Client, authorizer: RecordingAuthorizer
) -> None:
    digest = await push_blob(client, "secret/repo", b"secret layer")
    authorizer.denied.add((Action.GET_DOWNLOAD_URL_FOR_LAYER, "secret/repo"))
    for params in ({"mount": digest, "from": "secret/repo"}, {"mount": digest}):
        response = await client.post("/v2/team/app/blobs/uploads/", params=params)
        assert response.status == 202
        assert (await client.head(f"/v2/team/app/blobs/{digest}")).status == 404


async def test_unauthenticated_requests_are_401(registry: Registry) -> None:
    app = build_web_app(registry, authenticator=TokenAuthenticator(), authorizer=OpenAccess())
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/v2/")
        assert response.status == 401
        assert await error_code(response) == "UNAUTHORIZED"
        assert (await client.get("/v2/", headers={"Authorization": "Bearer good"})).status == 200
        assert (await client.get("/healthz")).status == 200
