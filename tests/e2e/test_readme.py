"""The README's first steps, command by command, on a fresh server.

``moorage serve`` with its defaults (IAM on, no create-on-push), ``moorage admin init``, then
only what a user types: the AWS CLI for the control plane and skopeo, logged in with
``aws ecr get-login-password``, for pushes and pulls. With the AWS CLI v1 from PyPI and the v2
that Debian packages (2.9, which predates ``AWS_ENDPOINT_URL_ECR``: the README says to add
``--endpoint-url`` to each command for it).
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.aws import AWS_CLI_V1, AwsCli, admin_init, aws_cli_v2, aws_env, aws_json
from tests.e2e.conftest import StartServer
from tests.e2e.ecr.helpers import SKOPEO, skopeo, small_layout
from tests.postgres import create_throwaway_database, drop_database

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgres"])
def database_args(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """The default SQLite metadata, and PostgreSQL in a throwaway database."""
    if request.param == "sqlite":
        yield []
        return
    url = asyncio.run(create_throwaway_database())
    yield ["--database-url", url]
    asyncio.run(drop_database(url))


@pytest.fixture(params=["v1", "v2"])
def cli(request: pytest.FixtureRequest) -> AwsCli:
    return AWS_CLI_V1 if request.param == "v1" else aws_cli_v2()


def test_first_steps_from_the_readme(
    start_server: StartServer, tmp_path: Path, database_args: list[str], cli: AwsCli
) -> None:
    server = start_server(
        data_dir=tmp_path / "moorage-data", extra_args=database_args, emulator=False
    )
    admin = admin_init(server.data_dir, *database_args)
    home, host = tmp_path / "home", server.host
    home.mkdir()

    def aws(*args: str) -> dict[str, object]:
        return aws_json(server.url, admin, home, *args, cli=cli)

    created = aws("ecr", "create-repository", "--repository-name", "team/app")
    assert created["repository"]["repositoryUri"] == f"{host}/team/app"  # type: ignore[index]

    auth_file = tmp_path / "auth.json"
    aws_cli = cli.run_line(server.url)
    login = subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f"{aws_cli} ecr get-login-password | {shlex.quote(SKOPEO)} login --username AWS "
            f"--password-stdin --tls-verify=false --authfile {shlex.quote(str(auth_file))} {host}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=aws_env(server.url, admin, home),
        check=False,
    )
    assert login.returncode == 0, login.stderr

    layout = small_layout(tmp_path / "image", tag="v1")
    auth = ("--authfile", str(auth_file))
    destination = f"docker://{host}/team/app:v1"
    skopeo("copy", "--all", *auth, "--dest-tls-verify=false", f"oci:{layout.path}:v1", destination)

    described = aws("ecr", "describe-images", "--repository-name", "team/app")
    tagged = [d for d in described["imageDetails"] if d.get("imageTags")]  # type: ignore[union-attr, attr-defined]
    assert [(d["imageDigest"], d["imageTags"]) for d in tagged] == [(layout.index_digest, ["v1"])]

    pulled = tmp_path / "pulled"
    skopeo("copy", "--all", *auth, "--src-tls-verify=false", destination, f"oci:{pulled}:v1")
    assert (pulled / "index.json").is_file()

    deleted = aws(
        "ecr", "batch-delete-image", "--repository-name", "team/app", "--image-ids", "imageTag=v1"
    )
    assert deleted["failures"] == []
    assert deleted["imageIds"] == [{"imageDigest": layout.index_digest, "imageTag": "v1"}]
    gone = skopeo("inspect", "--raw", *auth, "--tls-verify=false", destination, check=False)
    assert gone.returncode != 0
