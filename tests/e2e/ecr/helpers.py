"""Helpers of the ECR API tests: IAM users made with ``moorage admin`` on a running server's
data folder (exactly as an operator would), policies, AWS errors, and skopeo pushes with a
GetAuthorizationToken login."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from tests.e2e.aws import Credentials
from tests.e2e.oci_layout import Layout, build_layout
from tests.e2e.server import run_cli

SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"

_KEY_ID = re.compile(r"Access key id:\s+(\S+)")
_SECRET = re.compile(r"Secret access key:\s+(\S+)")


def admin(data_dir: Path, *args: str) -> str:
    """``moorage admin <args> --data-dir <data_dir>``, which must succeed; its output."""
    result = run_cli("admin", *args, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout


def create_user(
    data_dir: Path,
    account_id: str,
    name: str,
    *policies: Mapping[str, Any],
) -> Credentials:
    """A new IAM user of ``account_id`` with an access key and inline ``policies``."""
    admin(data_dir, "user", "create", name, "--account-id", account_id)
    for index, policy in enumerate(policies):
        put_policy(data_dir, account_id, name, f"policy-{index}", policy)
    out = admin(data_dir, "access-key", "create", name, "--account-id", account_id)
    key_id, secret = _KEY_ID.search(out), _SECRET.search(out)
    assert key_id is not None, out
    assert secret is not None, out
    return Credentials(key_id.group(1), secret.group(1), account_id)


def put_policy(
    data_dir: Path, account_id: str, user: str, name: str, policy: Mapping[str, Any]
) -> None:
    """Attach (or replace) the inline identity policy ``name`` of ``user``."""
    path = data_dir.parent / f"policy-{account_id}-{user}-{name}.json"
    path.write_text(json.dumps(policy))
    admin(data_dir, "policy", "put", user, name, str(path), "--account-id", account_id)


def allow(
    actions: str | list[str], resource: str | list[str] = "*", **extra: Any
) -> dict[str, Any]:
    """An identity policy with one Allow statement."""
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def resource_policy(*statements: Mapping[str, Any]) -> str:
    """A repository or registry policy's text."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def aws_error(call: Callable[..., Any], /, **params: Any) -> tuple[str, str]:
    """The (code, message) of the ClientError that ``call(**params)`` must raise."""
    with pytest.raises(ClientError) as raised:
        call(**params)
    error = raised.value.response["Error"]
    return error["Code"], error.get("Message", "")


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run skopeo without a signature policy; it must succeed unless ``check`` is False."""
    # Fail, never skip: a skipped client test would hide that pushes were not proven.
    assert os.access(SKOPEO, os.X_OK), "skopeo is not installed (apt-get install skopeo)"
    result = subprocess.run(
        [SKOPEO, "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def small_layout(path: Path, tag: str = "v1", seed: int = 7) -> Layout:
    """A one-platform image (an index over one manifest with one small layer)."""
    return build_layout(
        path, tag=tag, architectures=("amd64",), layers_per_image=1, file_size=1024, seed=seed
    )


def login_password(client: Any) -> str:
    """The /v2/ password from GetAuthorizationToken (the token is base64 of ``AWS:<pw>``)."""
    data = client.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    return password


def push(client: Any, host: str, layout: Layout, repository: str, tag: str | None = None) -> None:
    """Push ``layout`` to ``host/repository:tag`` with skopeo, logged in as ``client``'s user."""
    destination = f"docker://{host}/{repository}:{tag or layout.tag}"
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"AWS:{login_password(client)}",
        f"oci:{layout.path}:{layout.tag}",
        destination,
    )
