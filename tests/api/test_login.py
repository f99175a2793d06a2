"""Logging in to ``/v2/``: Basic with the login password, the Bearer token flow, expiry.

The password is what GetAuthorizationToken hands out (``iam/login_tokens.py``): docker,
skopeo and containerd send it as ``Basic AWS:<password>``, or exchange it at ``/token``
for a bearer token (GET with Basic auth, or an OAuth2 POST), as the challenge invites.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moorage.app import Registry, build_web_app, wire
from moorage.config import Settings
from moorage.services.authentication import user_principal
from moorage.storage.blobs import build_blob_store
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from tests.api.oci import Client

ACCOUNT = "111111111111"
ALLOW_ECR = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}'
)


def basic(password: str, user: str = "AWS") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}"
    )
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    registry = wire(settings, metadata, build_blob_store("memory"))
    yield registry
    await registry.close()


@pytest.fixture
async def client(registry: Registry) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_web_app(registry))) as test_client:
        yield test_client


async def issue_password(registry: Registry, *, issued: datetime | None = None) -> str:
    identities = registry.identities
    await identities.create_account(ACCOUNT, "test")
    user = await identities.create_user(ACCOUNT, "dev")
    await identities.put_user_policy(ACCOUNT, "dev", "ecr", ALLOW_ECR)
    key = await identities.create_access_key(ACCOUNT, "dev")
    await registry.repositories.create(ACCOUNT, "team/app")
    principal = user_principal(user, key.access_key_id)
    password, _ = registry.login_tokens.issue(principal, issued or datetime.now(UTC))
    return password


async def test_unauthenticated_requests_get_both_challenges(client: Client) -> None:
    response = await client.get("/v2/team/app/tags/list")
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "UNAUTHORIZED"
    host = f"{client.host}:{client.port}"
    assert response.headers.getall("WWW-Authenticate") == [
        f'Basic realm="http://{host}/",service="{host}"',
        f'Bearer realm="http://{host}/token",service="{host}",scope="repository:team/app:pull"',
    ]


async def test_basic_login_with_the_password(client: Client, registry: Registry) -> None:
    password = await issue_password(registry)
    response = await client.get("/v2/team/app/tags/list", headers=basic(password))
    assert response.status == 200
    assert (await response.json()) == {"name": "team/app", "tags": []}


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"AWS:not-a-token").decode(),
        "Basic %%%",
        "Bearer not-a-token",
        "Negotiate abc",
    ],
)
async def test_bad_credentials_are_401(client: Client, authorization: str) -> None:
    response = await client.get("/v2/", headers={"Authorization": authorization})
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "UNAUTHORIZED"


async def test_the_user_name_must_be_aws(client: Client, registry: Registry) -> None:
    password = await issue_password(registry)
    response = await client.get("/v2/", headers=basic(password, user="admin"))
    assert response.status == 401


async def test_an_expired_password_is_denied_with_ecrs_words(
    client: Client, registry: Registry
) -> None:
    password = await issue_password(registry, issued=datetime.now(UTC) - timedelta(hours=13))
    response = await client.get("/v2/team/app/tags/list", headers=basic(password))
    assert response.status == 403
    assert (await response.json())["errors"][0] == {
        "code": "DENIED",
        "message": "Your authorization token has expired. Reauthenticate and try again.",
    }


async def test_a_deactivated_key_ends_its_logins(client: Client, registry: Registry) -> None:
    password = await issue_password(registry)
    (key,) = await registry.identities.list_access_keys(ACCOUNT, "dev")
    await registry.identities.deactivate_access_key(ACCOUNT, "dev", key.access_key_id)
    response = await client.get("/v2/", headers=basic(password))
    assert response.status == 401


async def test_token_endpoint_get_with_basic_then_bearer(
    client: Client, registry: Registry
) -> None:
    password = await issue_password(registry)
    scope = "repository:team/app:pull,push"
    response = await client.get(
        "/token", params={"service": "registry", "scope": scope}, headers=basic(password)
    )
    assert response.status == 200
    body = await response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0
    assert body["scope"] == scope
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert (await client.get("/v2/team/app/tags/list", headers=bearer)).status == 200


async def test_token_endpoint_oauth_post(client: Client, registry: Registry) -> None:
    password = await issue_password(registry)
    form = {"grant_type": "password", "username": "AWS", "password": password, "service": "r"}
    response = await client.post("/token", data=form)
    assert response.status == 200
    token = (await response.json())["access_token"]
    refreshed = await client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )
    assert refreshed.status == 200
    bearer = {"Authorization": f"Bearer {(await refreshed.json())['access_token']}"}
    assert (await client.get("/v2/team/app/tags/list", headers=bearer)).status == 200


async def test_token_endpoint_refuses_what_it_cannot_verify(client: Client) -> None:
    assert (await client.get("/token")).status == 401
    assert (await client.get("/token", headers=basic("forged"))).status == 401
    bad = await client.post("/token", data={"grant_type": "password", "password": "forged"})
    assert bad.status == 401
    unsupported = await client.post("/token", data={"grant_type": "client_credentials"})
    assert unsupported.status == 400
    assert await unsupported.json() == {"error": "unsupported_grant_type"}
