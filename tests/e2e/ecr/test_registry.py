"""Registry operations of the ECR API against a real server with IAM on: GetAuthorizationToken
(and the README's login flow: ``aws ecr get-login-password | skopeo login``, then a push and
a pull), DescribeRegistry, GetAccountSetting and PutAccountSetting."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import Credentials, aws_cli, aws_env, ecr_client
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import (
    SKOPEO,
    allow,
    aws_error,
    create_user,
    resource_policy,
    skopeo,
    small_layout,
)
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def raw(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin, parameter_validation=False)


# -- GetAuthorizationToken -------------------------------------------------------------------


def test_get_authorization_token(ecr: Any, iam_server: IamServer) -> None:
    before = datetime.datetime.now(datetime.UTC)
    data = ecr.get_authorization_token()["authorizationData"]
    assert len(data) == 1
    entry = data[0]
    user, _, password = base64.b64decode(entry["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    assert password
    assert not any(c.isspace() for c in password)
    # 12 hours, kept in whole seconds.
    lifetime = entry["expiresAt"] - before
    assert datetime.timedelta(hours=12) - datetime.timedelta(seconds=2) <= lifetime
    assert lifetime <= datetime.timedelta(hours=12, seconds=2)
    assert entry["proxyEndpoint"] == iam_server.url


def test_get_authorization_token_for_several_registries(ecr: Any, iam_server: IamServer) -> None:
    ids = [iam_server.admin.account_id, "111122223333", iam_server.admin.account_id]
    data = ecr.get_authorization_token(registryIds=ids)["authorizationData"]
    # One entry per registry (once each), all with the caller's one token.
    assert len(data) == 2
    assert len({entry["authorizationToken"] for entry in data}) == 1
    assert [entry["proxyEndpoint"] for entry in data] == [iam_server.url, iam_server.url]


@pytest.mark.parametrize(
    "registry_ids",
    [["123"], ["abcdefghijkl"], [], [f"{i:012d}" for i in range(11)]],
)
def test_get_authorization_token_refuses_bad_registry_ids(
    raw: Any, registry_ids: list[str]
) -> None:
    code, message = aws_error(raw.get_authorization_token, registryIds=registry_ids)
    assert code == "InvalidParameterException"
    assert "registryIds" in message


@pytest.fixture(scope="module")
def token_users(iam_server: IamServer) -> dict[str, Any]:
    """``allowed`` may GetAuthorizationToken by its identity policy; ``denied`` has none."""
    data_dir, account = iam_server.process.data_dir, iam_server.admin.account_id
    allowed = create_user(data_dir, account, "token-allowed", allow("ecr:GetAuthorizationToken"))
    denied = create_user(data_dir, account, "token-denied", allow("ecr:DescribeRepositories"))
    return {
        "allowed": ecr_client(iam_server.url, allowed),
        "denied": ecr_client(iam_server.url, denied),
    }


def test_get_authorization_token_needs_an_identity_policy(
    token_users: dict[str, Any], iam_server: IamServer
) -> None:
    assert token_users["allowed"].get_authorization_token()["authorizationData"]
    code, message = aws_error(token_users["denied"].get_authorization_token)
    assert code == "AccessDeniedException"
    assert message.startswith(
        f"User: arn:aws:iam::{iam_server.admin.account_id}:user/token-denied is not authorized "
        "to perform: ecr:GetAuthorizationToken on resource: *"
    )


@pytest.fixture
def policies_granting_tokens(ecr: Any, iam_server: IamServer) -> Iterator[None]:
    """A repository policy and a registry policy that both try to grant the token to the
    ``token-denied`` user; removed afterwards (the server is shared)."""
    account = iam_server.admin.account_id
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:user/token-denied"},
        "Action": ["ecr:GetAuthorizationToken", "ecr:*"],
    }
    ecr.create_repository(repositoryName="token/granting")
    ecr.set_repository_policy(repositoryName="token/granting", policyText=resource_policy(grant))
    ecr.put_registry_policy(policyText=resource_policy({**grant, "Resource": "*"}))
    yield
    with contextlib.suppress(ecr.exceptions.RegistryPolicyNotFoundException):
        ecr.delete_registry_policy()
    ecr.delete_repository(repositoryName="token/granting")


@pytest.mark.usefixtures("policies_granting_tokens")
def test_no_resource_policy_grants_the_authorization_token(token_users: dict[str, Any]) -> None:
    # The resource policies work for what they may grant ...
    token_users["denied"].list_images(repositoryName="token/granting")
    # ... but the login itself comes only from the caller's identity policy (ECR user guide).
    code, _ = aws_error(token_users["denied"].get_authorization_token)
    assert code == "AccessDeniedException"


# -- DescribeRegistry and account settings ----------------------------------------------------


def test_describe_registry(ecr: Any, iam_server: IamServer) -> None:
    answer = ecr.describe_registry()
    assert answer["registryId"] == iam_server.admin.account_id
    assert answer["replicationConfiguration"] == {"rules": []}


DEFAULTS = {
    "BASIC_SCAN_TYPE_VERSION": "AWS_NATIVE",
    "REGISTRY_POLICY_SCOPE": "V2",
    "BLOB_MOUNTING": "ENABLED",
}


@pytest.mark.parametrize(("name", "default"), DEFAULTS.items())
def test_account_setting_defaults(ecr: Any, name: str, default: str) -> None:
    assert ecr.get_account_setting(name=name)["value"] == default


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BASIC_SCAN_TYPE_VERSION", "CLAIR"),
        ("REGISTRY_POLICY_SCOPE", "V1"),
        ("BLOB_MOUNTING", "DISABLED"),
    ],
)
def test_put_and_get_account_setting(ecr: Any, name: str, value: str) -> None:
    try:
        answer = ecr.put_account_setting(name=name, value=value)
        assert (answer["name"], answer["value"]) == (name, value)
        answer = ecr.get_account_setting(name=name)
        assert (answer["name"], answer["value"]) == (name, value)
    finally:
        ecr.put_account_setting(name=name, value=DEFAULTS[name])


def test_account_setting_errors(ecr: Any, raw: Any) -> None:
    code, message = aws_error(ecr.get_account_setting, name="NO_SUCH_SETTING")
    assert code == "InvalidParameterException"
    assert "'name'" in message
    code, message = aws_error(ecr.put_account_setting, name="NO_SUCH_SETTING", value="x")
    assert code == "InvalidParameterException"
    code, message = aws_error(ecr.put_account_setting, name="REGISTRY_POLICY_SCOPE", value="V3")
    assert code == "InvalidParameterException"
    assert "V1, V2" in message
    assert ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V2"
    code, message = aws_error(raw.get_account_setting, name="")
    assert code == "InvalidParameterException"
    assert "name" in message


# -- The README's login flow: aws ecr get-login-password | skopeo login ----------------------


def test_aws_cli_get_login_password(ecr: Any, iam_server: IamServer, tmp_path: Path) -> None:
    result = aws_cli(iam_server.url, iam_server.admin, tmp_path, "ecr", "get-login-password")
    assert result.returncode == 0, result.stderr
    password = result.stdout.strip()
    assert password
    assert not any(c.isspace() for c in password)


def test_login_with_skopeo_then_push_and_pull(
    ecr: Any, iam_server: IamServer, tmp_path: Path
) -> None:
    host = iam_server.process.host
    auth_file = tmp_path / "auth.json"
    env = {
        **aws_env(iam_server.url, iam_server.admin, tmp_path),
        "REGISTRY_AUTH_FILE": str(auth_file),
    }
    aws = f"{shlex.quote(sys.executable)} -m awscli"
    login = subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f"{aws} ecr get-login-password | {shlex.quote(SKOPEO)} login --password-stdin "
            f"--username AWS --tls-verify=false {host}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout
    assert host in json.loads(auth_file.read_text())["auths"]

    # As on ECR, the repository must exist before the push.
    ecr.create_repository(repositoryName="login/app")
    layout = small_layout(tmp_path / "layout", tag="v1")
    auth = ("--authfile", str(auth_file))
    skopeo(
        "copy",
        "--all",
        *auth,
        "--dest-tls-verify=false",
        f"oci:{layout.path}:v1",
        f"docker://{host}/login/app:v1",
    )
    raw_index = skopeo(
        "inspect", "--raw", *auth, "--tls-verify=false", f"docker://{host}/login/app:v1"
    )
    assert "sha256:" + hashlib.sha256(raw_index.stdout.encode()).hexdigest() == layout.index_digest
    pulled = tmp_path / "pulled"
    skopeo(
        "copy",
        "--all",
        *auth,
        "--src-tls-verify=false",
        f"docker://{host}/login/app:v1",
        f"oci:{pulled}:v1",
    )
    for digest in (*layout.manifest_digests, *layout.blob_digests):
        algorithm, hex_digest = digest.split(":")
        assert (pulled / "blobs" / algorithm / hex_digest).is_file(), digest
    images = ecr.describe_images(repositoryName="login/app", imageIds=[{"imageTag": "v1"}])
    assert images["imageDetails"][0]["imageDigest"] == layout.index_digest


def test_skopeo_login_with_a_wrong_password_fails(iam_server: IamServer, tmp_path: Path) -> None:
    result = skopeo(
        "login",
        "--authfile",
        str(tmp_path / "auth.json"),
        "--tls-verify=false",
        "--username",
        "AWS",
        "--password",
        "not-a-token",
        iam_server.process.host,
        check=False,
    )
    assert result.returncode != 0
    assert (
        not (tmp_path / "auth.json").exists()
        or iam_server.process.host not in (tmp_path / "auth.json").read_text()
    )


def test_emulator_mode_hands_out_tokens_too(module_server: ServerProcess) -> None:
    # Emulator mode: every caller is the emulator account's root, whatever key it signs with.
    anyone = Credentials("AKIAEMULATOR00000000", "any-secret", "123456789012")
    client = ecr_client(module_server.url, anyone)
    entry = client.get_authorization_token()["authorizationData"][0]
    assert base64.b64decode(entry["authorizationToken"]).startswith(b"AWS:")
    assert entry["proxyEndpoint"] == module_server.url
    assert client.describe_registry()["registryId"] == "123456789012"
