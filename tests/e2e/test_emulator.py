"""Emulator mode: for people who test their own AWS code against moorage.

Any access key and any signature is the emulator account, ``/v2/`` is open to anonymous
clients as that account, ``POST /_moorage/reset`` wipes all state, and the mode refuses to
listen beyond loopback unless told to.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.aws import Credentials, ecr_client
from tests.e2e.conftest import StartServer
from tests.e2e.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

ANY_KEY = Credentials("AKIAANYTHINGATALL000", "not-the-secret-of-anything", "123456789012")


def request(server: ServerProcess, method: str, path: str) -> tuple[int, bytes]:
    req = urllib.request.Request(f"{server.url}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_any_credentials_are_the_emulator_account(start_server: StartServer) -> None:
    server = start_server(extra_args=["--emulator-account", "210987654321"])
    client = ecr_client(server.url, ANY_KEY)
    created = client.create_repository(repositoryName="team/app")["repository"]
    assert created["registryId"] == "210987654321"
    assert created["repositoryArn"] == "arn:aws:ecr:us-east-1:210987654321:repository/team/app"
    other = ecr_client(server.url, Credentials("AKIAOTHER00000000000", "x", "0"))
    (listed,) = other.describe_repositories()["repositories"]
    assert listed["repositoryName"] == "team/app"


def test_anonymous_registry_access_and_reset(start_server: StartServer) -> None:
    server = start_server()
    client = ecr_client(server.url, ANY_KEY)
    client.create_repository(repositoryName="to/forget")
    status, body = request(server, "GET", "/v2/_catalog")
    assert status == 200
    assert json.loads(body)["repositories"] == ["to/forget"]

    status, body = request(server, "POST", "/_moorage/reset")
    assert status == 200
    assert json.loads(body) == {"reset": True}
    assert json.loads(request(server, "GET", "/v2/_catalog")[1])["repositories"] == []
    with pytest.raises(ClientError) as caught:
        client.describe_repositories(repositoryNames=["to/forget"])
    assert caught.value.response["Error"]["Code"] == "RepositoryNotFoundException"


def test_without_emulator_mode_there_is_no_reset_and_no_anonymous_access(
    start_server: StartServer,
) -> None:
    server = start_server(emulator=False)
    assert request(server, "POST", "/_moorage/reset")[0] in (404, 405)
    assert request(server, "GET", "/v2/_catalog")[0] == 401
    with pytest.raises(ClientError) as caught:
        ecr_client(server.url, ANY_KEY).describe_repositories()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_emulator_mode_stays_on_loopback(tmp_path: Path) -> None:
    refused = run_cli("serve", "--emulator", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert refused.returncode == 2
    assert refused.stderr.startswith("moorage: error: emulator mode accepts any credentials")
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_fresh_server_says_how_to_get_credentials(start_server: StartServer) -> None:
    server = start_server(emulator=False)
    assert "no accounts yet; create the first with `moorage admin init`" in server.log()
    emulated = start_server(data_dir=server.data_dir.parent / "emulated")
    assert "no accounts yet" not in emulated.log()
