"""Commands that open the metadata database fail in one line, never with a traceback, when
its URL is bad or the database cannot be reached."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from moorage.cli import main


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


COMMANDS = [
    ["gc"],
    ["lifecycle", "run"],
    ["jobs", "list"],
    ["admin", "account", "list"],
    ["repo", "list"],
    ["migrate"],
    ["worker"],
    ["serve", "--port", "0"],
]

BAD_URLS = {
    "garbage": ("nonsense", "does not parse"),
    "unsupported driver": ("postgresql://x", "unsupported metadata database URL"),
    "in-memory SQLite": ("sqlite+aiosqlite:///:memory:", "in-memory SQLite"),
    "refused": (
        f"postgresql+asyncpg://moorage:secret@127.0.0.1:{_closed_port()}/db",
        "cannot open the metadata database",
    ),
    "unknown database": (
        "postgresql+asyncpg://127.0.0.1:5432/moorage_no_such_database",
        'database "moorage_no_such_database" does not exist',
    ),
}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("url", "expected"), BAD_URLS.values(), ids=BAD_URLS.keys())
def test_bad_database_url_is_a_one_line_error(
    command: list[str], url: str, expected: str, tmp_path: Path
) -> None:
    clean = {name: None for name in os.environ if name.startswith("MOORAGE_")}
    result = CliRunner().invoke(
        main, [*command, "--data-dir", str(tmp_path), "--database-url", url], env=clean
    )
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("moorage: error: ")
    assert expected in lines[0]
    assert "secret" not in result.output


def test_bad_database_url_as_a_real_process(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MOORAGE_")}
    url = f"postgresql+asyncpg://127.0.0.1:{_closed_port()}/db"
    for args in (["gc", "--database-url", "nonsense"], ["gc", "--database-url", url]):
        finished = subprocess.run(
            [sys.executable, "-m", "moorage", *args, "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert finished.returncode == 2
        assert "Traceback" not in finished.stderr
        assert len(finished.stderr.strip().splitlines()) == 1, finished.stderr


def test_serve_takes_the_schedule_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--lifecycle-interval`` and ``--gc-interval`` reach the settings ``serve`` runs with."""
    import moorage.server
    from moorage.config import Settings

    seen: list[Settings] = []
    monkeypatch.setattr(moorage.server, "run", seen.append)
    env = {name: None for name in os.environ if name.startswith("MOORAGE_")}
    arguments = ["serve", "--lifecycle-interval", "60", "--gc-interval", "0"]
    result = CliRunner().invoke(main, arguments, env=env)
    assert result.exit_code == 0, result.output
    assert (seen[0].lifecycle_interval, seen[0].gc_interval) == (60.0, 0.0)


def test_worker_help_names_every_job_kind() -> None:
    text = CliRunner().invoke(main, ["worker", "--help"]).output
    for kind in ("lifecycle", "scans", "advisory import", "garbage collection"):
        assert kind in " ".join(text.split())
