"""The API version check, health, and errors for what is not an endpoint."""

from __future__ import annotations

from tests.api.oci import Client, error_code


async def test_api_version_check(client: Client) -> None:
    response = await client.get("/v2/")
    assert response.status == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


async def test_healthz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok"}


async def test_unknown_endpoint_answers_json_404(client: Client) -> None:
    response = await client.get("/v2/some/repo/nonsense")
    assert response.status == 404
    assert await error_code(response) == "NOT_FOUND"


async def test_wrong_method_answers_unsupported(client: Client) -> None:
    response = await client.post("/v2/some/repo/tags/list")
    assert response.status == 405
    assert await error_code(response) == "UNSUPPORTED"


async def test_every_route_declares_its_access_rule() -> None:
    from moorage.protocols.oci.auth import declared_action
    from moorage.protocols.oci.routes import ROUTES

    undeclared = [route.path for route in ROUTES if declared_action(route.handler) is None]
    assert undeclared == []
