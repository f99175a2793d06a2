"""AWS clients against a real moorage server: admin credentials, boto3 and the AWS CLI.

``admin_init`` runs ``moorage admin init`` on a server's data folder and reads the access key
it prints once; ``ecr_client`` and ``aws_cli`` then talk to the server as that user, exactly
as a user following the README would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.e2e.server import run_cli

REGION = "us-east-1"
_KEY_ID = re.compile(r"Access key id:\s+(\S+)")
_SECRET = re.compile(r"Secret access key:\s+(\S+)")


_EXPORT_LINE = re.compile(r"^\s*export (AWS_ACCESS_KEY_ID=.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    account_id: str
    # The variables of the `export` line that `admin init` printed, when these came from it.
    exported: dict[str, str] = field(default_factory=dict, repr=False)


def admin_init(data_dir: Path, *args: str) -> Credentials:
    """The admin user's access key, from ``moorage admin init`` on ``data_dir``."""
    result = run_cli("admin", "init", "--data-dir", str(data_dir), *args)
    assert result.returncode == 0, result.stderr
    key_id, secret = _KEY_ID.search(result.stdout), _SECRET.search(result.stdout)
    account = re.search(r"Account (\d{12})", result.stdout)
    assert key_id is not None, result.stdout
    assert secret is not None, result.stdout
    assert account is not None, result.stdout
    export = _EXPORT_LINE.search(result.stdout)
    assert export is not None, result.stdout
    exported = dict(part.split("=", 1) for part in export.group(1).split())
    return Credentials(key_id.group(1), secret.group(1), account.group(1), exported)


def ecr_client(
    endpoint: str, credentials: Credentials, *, region: str = REGION, **config: Any
) -> Any:
    """A boto3 ECR client for the server at ``endpoint`` (no retries: tests see each answer)."""
    return boto3.client(
        "ecr",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def aws_env(endpoint: str, credentials: Credentials, home: Path) -> dict[str, str]:
    """The environment a user sets for the AWS CLI: keys, region, ECR endpoint, no profile.

    For credentials from ``admin init``, exactly the variables of the line it printed (so a
    line the AWS CLI cannot work with fails here, as it would for a user), but for the
    endpoint: the test server listens on a port of its own, which ``admin init`` run on the
    data folder alone does not know.
    """
    exported = credentials.exported or {
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,  # awscli v1 (the PyPI package) reads only this one
    }
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **exported,
        "AWS_ENDPOINT_URL_ECR": endpoint,
        "AWS_ENDPOINT_URL_ECR_PUBLIC": endpoint,
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
        "HOME": str(home),
    }


@dataclass(frozen=True)
class AwsCli:
    """One AWS CLI: how to run it, and whether it reads ``AWS_ENDPOINT_URL_ECR`` (v1 from
    1.29, v2 from 2.13) or needs ``--endpoint-url`` on each command, as the README says."""

    name: str
    command: tuple[str, ...]
    reads_endpoint_variable: bool = True

    def run_line(self, endpoint: str) -> str:
        """The shell words a README line starting with ``aws`` becomes for this CLI."""
        words = " ".join(shlex.quote(word) for word in self.command)
        if not self.reads_endpoint_variable:
            return f"{words} --endpoint-url {shlex.quote(endpoint)}"
        return words


# The AWS CLI v1 from PyPI (a test dependency) and v2 as Debian packages it (2.9, older than
# the endpoint variables; scripts/test installs it).
AWS_CLI_V1 = AwsCli("v1", (sys.executable, "-m", "awscli"))
AWS_CLI_V2_PATH = Path("/usr/bin/aws")


def aws_cli_v2() -> AwsCli:
    """The system's AWS CLI v2, which must be installed (scripts/test installs it)."""
    result = subprocess.run(
        [str(AWS_CLI_V2_PATH), "--version"], capture_output=True, text=True, check=True
    )
    version = re.match(r"aws-cli/(\d+)\.(\d+)", result.stdout + result.stderr)
    assert version is not None, result.stdout + result.stderr
    assert version[1] == "2", result.stdout
    return AwsCli("v2", (str(AWS_CLI_V2_PATH),), int(version[2]) >= 13)


def aws_cli(
    endpoint: str,
    credentials: Credentials,
    home: Path,
    *args: str,
    stdin: str | None = None,
    cli: AwsCli = AWS_CLI_V1,
) -> subprocess.CompletedProcess[str]:
    """Run ``aws <args>`` (by default awscli from PyPI, as ``python -m awscli``) against the
    server."""
    endpoint_args = () if cli.reads_endpoint_variable else ("--endpoint-url", endpoint)
    return subprocess.run(
        [*cli.command, *args, *endpoint_args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env=aws_env(endpoint, credentials, home),
        check=False,
    )


def aws_json(
    endpoint: str, credentials: Credentials, home: Path, *args: str, cli: AwsCli = AWS_CLI_V1
) -> dict[str, Any]:
    """``aws <args> --output json``, which must succeed; its parsed output."""
    result = aws_cli(endpoint, credentials, home, *args, "--output", "json", cli=cli)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}
