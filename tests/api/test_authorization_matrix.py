"""The authorization matrix of ``/v2/``: every route, as every kind of caller.

The application runs with its real doors (login tokens, the IAM policy engine, repository
policies); the callers log in with tokens from their own access keys, as ``docker login``
does after GetAuthorizationToken. The registry host template names the owner's account, so
callers from another account address it as ECR clients do (by host).

Callers:

- ``anonymous``: no credentials -> 401 UNAUTHORIZED everywhere, with the challenge;
- ``alice``: the owner's user, allowed ``ecr:*`` by her identity policy -> the route's result;
- ``ivan``: the owner's user with no identity policy, named by the repository policy ->
  the route's result (same account: one allow suffices);
- ``dora``: allowed ``*`` but denied ``ecr:*`` on the repository by her identity policy ->
  403 DENIED on repository routes;
- ``rita``: allowed by identity, denied by the repository policy -> 403 DENIED;
- ``mallory``: another account's user, allowed ``ecr:*`` by her identity policy, not named by
  the repository -> 403 DENIED (across accounts both sides must allow);
- ``eve``: another account's user, allowed by identity and by the repository policy (which
  names her account) -> the route's result.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moorage.app import Registry, build_web_app, wire
from moorage.config import Settings
from moorage.iam.actions import user_arn
from moorage.services.authentication import user_principal
from moorage.storage.blobs import build_blob_store
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from tests.api.oci import Client, digest_of, image_manifest

OWNER = "111111111111"
OTHER = "222222222222"
HOST = f"{OWNER}.registry.test"
REPOSITORY = "team/app"
REPOSITORY_ARN = f"arn:aws:ecr:us-east-1:{OWNER}:repository/{REPOSITORY}"
UPLOAD = "{upload}"  # replaced by a live upload session's id


def identity(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ALLOW_ECR = {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}
USERS: dict[str, tuple[str, str | None]] = {
    # name: (account, identity policy)
    "alice": (OWNER, identity(ALLOW_ECR)),
    "ivan": (OWNER, None),
    "dora": (
        OWNER,
        identity(
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:*", "Resource": REPOSITORY_ARN},
        ),
    ),
    "rita": (OWNER, identity(ALLOW_ECR)),
    "mallory": (OTHER, identity(ALLOW_ECR)),
    "eve": (OTHER, identity(ALLOW_ECR)),
}
REPOSITORY_POLICY = identity(
    {
        "Sid": "TeamAndPartner",
        "Effect": "Allow",
        "Principal": {"AWS": [user_arn(OWNER, "ivan"), user_arn(OTHER, "eve")]},
        "Action": "ecr:*",
    },
    {
        "Sid": "NotRita",
        "Effect": "Deny",
        "Principal": {"AWS": user_arn(OWNER, "rita")},
        "Action": "ecr:*",
    },
)

CONFIG, LAYER, LOOSE = b'{"architecture":"amd64"}', b"layer bytes", b"loose blob"
MANIFEST = image_manifest(CONFIG, [LAYER])
MANIFEST_DIGEST = digest_of(MANIFEST)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    allowed_status: int  # what the route answers a caller who may use it
    repository_scoped: bool = True
    body: bytes | None = None
    params: dict[str, str] | None = None


ROUTES = [
    Route("GET", "/v2/", 200, repository_scoped=False),
    Route("GET", f"/v2/{REPOSITORY}/manifests/v1", 200),
    Route("HEAD", f"/v2/{REPOSITORY}/manifests/v1", 200),
    Route("GET", f"/v2/{REPOSITORY}/manifests/{MANIFEST_DIGEST}", 200),
    Route("PUT", f"/v2/{REPOSITORY}/manifests/v2", 201, body=MANIFEST),
    Route("DELETE", f"/v2/{REPOSITORY}/manifests/v1", 202),
    Route("GET", f"/v2/{REPOSITORY}/blobs/{digest_of(LAYER)}", 200),
    Route("HEAD", f"/v2/{REPOSITORY}/blobs/{digest_of(LAYER)}", 200),
    Route("DELETE", f"/v2/{REPOSITORY}/blobs/{digest_of(LOOSE)}", 202),
    Route("POST", f"/v2/{REPOSITORY}/blobs/uploads/", 202),
    Route("PATCH", f"/v2/{REPOSITORY}/blobs/uploads/{UPLOAD}", 202, body=b"chunk"),
    Route("GET", f"/v2/{REPOSITORY}/blobs/uploads/{UPLOAD}", 204),
    Route("DELETE", f"/v2/{REPOSITORY}/blobs/uploads/{UPLOAD}", 204),
    Route(
        "PUT",
        f"/v2/{REPOSITORY}/blobs/uploads/{UPLOAD}",
        201,
        body=b"whole",
        params={"digest": digest_of(b"whole")},
    ),
    Route("GET", f"/v2/{REPOSITORY}/tags/list", 200),
    Route("GET", f"/v2/{REPOSITORY}/referrers/{MANIFEST_DIGEST}", 200),
]
CALLERS = ["anonymous", "alice", "ivan", "dora", "rita", "mallory", "eve"]
ALLOWED = {"alice", "ivan", "eve"}


def expected_status(route: Route, caller: str) -> int:
    if caller == "anonymous":
        return 401
    if not route.repository_scoped or caller in ALLOWED:
        return route.allowed_status
    return 403


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}",
        registry_host="{registry_id}.registry.test",
    )
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    registry = wire(settings, metadata, build_blob_store("filesystem", root=tmp_path))
    yield registry
    await registry.close()


Login = Callable[[str], dict[str, str]]


@pytest.fixture
async def login(registry: Registry) -> Login:
    """Create the accounts, users and policies; return the headers each caller sends."""
    identities = registry.identities
    for account in (OWNER, OTHER):
        await identities.create_account(account, f"account {account}")
    headers: dict[str, dict[str, str]] = {"anonymous": {"Host": HOST}}
    now = datetime.now(UTC)
    for name, (account, policy) in USERS.items():
        user = await identities.create_user(account, name)
        key = await identities.create_access_key(account, name)
        if policy is not None:
            await identities.put_user_policy(account, name, "inline", policy)
        password, _ = registry.login_tokens.issue(user_principal(user, key.access_key_id), now)
        pair = base64.b64encode(f"AWS:{password}".encode()).decode()
        headers[name] = {"Host": HOST, "Authorization": f"Basic {pair}"}
    await registry.repositories.create(OWNER, REPOSITORY)
    await registry.repositories.set_policy(OWNER, REPOSITORY, REPOSITORY_POLICY)
    return lambda caller: headers[caller]


@pytest.fixture
async def client(registry: Registry) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_web_app(registry))) as test_client:
        yield test_client


async def seed(client: Client, headers: dict[str, str]) -> str:
    """An image tagged v1, a loose blob and an open upload, pushed as ``headers``' caller."""
    for blob in (CONFIG, LAYER, LOOSE):
        response = await client.post(
            f"/v2/{REPOSITORY}/blobs/uploads/",
            params={"digest": digest_of(blob)},
            data=io.BytesIO(blob),
            headers=headers,
        )
        assert response.status == 201, await response.text()
    put = await client.put(
        f"/v2/{REPOSITORY}/manifests/v1",
        data=MANIFEST,
        headers={**headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status == 201, await put.text()
    started = await client.post(f"/v2/{REPOSITORY}/blobs/uploads/", headers=headers)
    assert started.status == 202
    return started.headers["Location"].rsplit("/", 1)[-1]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_route_as_caller(client: Client, login: Login, route: Route, caller: str) -> None:
    upload = await seed(client, login("alice"))
    path = route.path.replace(UPLOAD, upload)
    response = await client.request(
        route.method, path, data=route.body, params=route.params, headers=login(caller)
    )
    expected = expected_status(route, caller)
    assert response.status == expected, await response.text()
    if route.method != "HEAD" and expected in (401, 403):
        body = await response.json()
        assert body["errors"][0]["code"] == ("UNAUTHORIZED" if expected == 401 else "DENIED")
    if expected == 401:
        challenges = response.headers.getall("WWW-Authenticate")
        assert challenges[0].startswith('Basic realm="http://')
        assert challenges[1].startswith('Bearer realm="http://')


async def test_the_denial_names_the_caller_action_and_repository(
    client: Client, login: Login
) -> None:
    response = await client.get(f"/v2/{REPOSITORY}/tags/list", headers=login("mallory"))
    error = (await response.json())["errors"][0]
    assert error["message"] == (
        f"User: {user_arn(OTHER, 'mallory')} is not authorized to perform: ecr:ListImages on "
        f"resource: {REPOSITORY_ARN} because no resource-based policy allows the "
        "ecr:ListImages action"
    )


async def test_nothing_changes_when_a_push_is_denied(client: Client, login: Login) -> None:
    await seed(client, login("alice"))
    for caller in ("anonymous", "dora", "rita", "mallory"):
        response = await client.put(
            f"/v2/{REPOSITORY}/manifests/v9", data=MANIFEST, headers=login(caller)
        )
        assert response.status in (401, 403)
    tags = await client.get(f"/v2/{REPOSITORY}/tags/list", headers=login("alice"))
    assert (await tags.json())["tags"] == ["v1"]


async def test_a_caller_addresses_its_own_account_by_its_host(
    client: Client, login: Login, registry: Registry
) -> None:
    """mallory's own registry is another host; there she may do what her policy allows."""
    await registry.repositories.create(OTHER, "own/app")
    headers = {**login("mallory"), "Host": f"{OTHER}.registry.test"}
    response = await client.get("/v2/own/app/tags/list", headers=headers)
    assert response.status == 200
    assert (await response.json())["name"] == "own/app"


TokenFlow = Callable[[Client, dict[str, str]], Awaitable[str]]


async def test_resource_tag_conditions_see_the_repositorys_tags(
    client: Client, login: Login, registry: Registry
) -> None:
    """A policy conditioned on ``ecr:ResourceTag/team`` follows the repository's tags."""
    only_web = identity(
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"ecr:ResourceTag/team": "web"}},
        }
    )
    await registry.identities.put_user_policy(OWNER, "ivan", "inline", only_web)
    await registry.repositories.delete_policy(OWNER, REPOSITORY)  # ivan's other way in
    path = f"/v2/{REPOSITORY}/tags/list"
    assert (await client.get(path, headers=login("ivan"))).status == 403
    await registry.repositories.tag_resource(OWNER, REPOSITORY, {"team": "web"})
    assert (await client.get(path, headers=login("ivan"))).status == 200
    await registry.repositories.tag_resource(OWNER, REPOSITORY, {"team": "db"})
    assert (await client.get(path, headers=login("ivan"))).status == 403


@pytest.mark.parametrize(
    ("caller", "visible"),
    [
        ("alice", ["other/app", REPOSITORY]),  # allowed everywhere by her identity policy
        ("ivan", [REPOSITORY]),  # only the repository policy names him
        ("eve", [REPOSITORY]),  # another account, granted by the repository
        ("dora", ["other/app"]),  # denied on team/app by her own policy
        ("rita", ["other/app"]),  # denied on team/app by its repository policy
        ("mallory", []),  # another account, granted nothing
    ],
)
async def test_the_catalog_lists_what_each_caller_may_describe(
    client: Client, login: Login, registry: Registry, caller: str, visible: list[str]
) -> None:
    await registry.repositories.create(OWNER, "other/app")
    response = await client.get("/v2/_catalog", headers=login(caller))
    assert response.status == 200
    assert (await response.json())["repositories"] == visible
