"""The worked example of docs/emulator.md, run as its reader would: a moto server-mode test
file, unchanged, with ``TEST_SERVER_MODE_ENDPOINT`` pointing at ``moorage serve --emulator``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import StartServer

pytestmark = pytest.mark.e2e

DOC = Path(__file__).parents[2] / "docs" / "emulator.md"
_EXAMPLE = re.compile(r"<!-- example: moto-server-mode -->\n```python\n(.*?)```", re.DOTALL)


def test_the_moto_server_mode_example_runs_against_moorage(
    start_server: StartServer, tmp_path: Path
) -> None:
    match = _EXAMPLE.search(DOC.read_text())
    assert match is not None, "the example is missing from docs/emulator.md"
    example = tmp_path / "test_example.py"
    example.write_text(match.group(1))
    server = start_server(extra_args=["--no-workers"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TEST_SERVER"))}
    env |= {
        "TEST_SERVER_MODE": "true",
        "TEST_SERVER_MODE_ENDPOINT": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
