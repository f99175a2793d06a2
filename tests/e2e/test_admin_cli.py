"""``moorage admin`` on the data folder of a running server: both keep working."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e


def test_admin_commands_run_beside_a_server(server: ServerProcess) -> None:
    data_dir = str(server.data_dir)
    created = run_cli("admin", "init", "--account-id", "123456789012", "--data-dir", data_dir)
    assert created.returncode == 0, created.stderr
    assert "Secret access key: " in created.stdout
    for args in (("user", "create", "ci-bot"), ("access-key", "create", "ci-bot")):
        result = run_cli("admin", *args, "--data-dir", data_dir)
        assert result.returncode == 0, result.stderr
    listed = run_cli("admin", "user", "list", "--data-dir", data_dir)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["admin", "ci-bot"]
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
        assert json.load(response) == {"status": "ok"}
    assert server.running
