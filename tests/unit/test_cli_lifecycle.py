"""``moorage lifecycle run`` in-process: a repository whose run fails is reported on stderr,
the others still run, and the command exits 1."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from moorage.app import open_registry
from moorage.cli import main
from moorage.config import Settings
from moorage.domain.models import Repository
from moorage.services.lifecycle import LifecycleService

ACCOUNT = "123456789012"
POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images after a week",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


async def _repositories_with_policies(data_dir: Path, names: list[str]) -> None:
    registry = await open_registry(Settings(data_dir=data_dir))
    try:
        for name in names:
            await registry.repositories.create(ACCOUNT, name)
            await registry.lifecycle.put_policy(ACCOUNT, name, POLICY)
    finally:
        await registry.close()


def _invoke(data_dir: Path) -> Result:
    env = {name: None for name in os.environ if name.startswith("MOORAGE_")}
    return CliRunner().invoke(main, ["lifecycle", "run", "--data-dir", str(data_dir)], env=env)


@pytest.fixture
def broken_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs over a repository named ``broken`` raise."""
    real_run_one = LifecycleService._run_one

    async def run_one(self: LifecycleService, repository: Repository, *, dry_run: bool) -> object:
        if repository.name == "broken":
            raise RuntimeError("the disk is on fire")
        return await real_run_one(self, repository, dry_run=dry_run)

    monkeypatch.setattr(LifecycleService, "_run_one", run_one)


@pytest.mark.usefixtures("broken_repository")
def test_a_failing_repository_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    asyncio.run(_repositories_with_policies(tmp_path, ["app", "broken", "web"]))
    result = _invoke(tmp_path)
    assert result.exit_code == 1
    assert f"{ACCOUNT}/app: expired 0 images" in result.stdout
    assert f"{ACCOUNT}/web: expired 0 images" in result.stdout
    assert f"failed {ACCOUNT}/broken: the disk is on fire" in result.stderr
    assert result.stderr.strip().endswith("1 repository failed: broken")
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("broken_repository")
def test_when_every_repository_fails_the_command_says_so_in_one_line(tmp_path: Path) -> None:
    asyncio.run(_repositories_with_policies(tmp_path, ["broken"]))
    result = _invoke(tmp_path)
    assert result.exit_code == 1
    assert f"failed {ACCOUNT}/broken: the disk is on fire" in result.stderr
    assert result.stderr.strip().endswith("1 repository failed: broken")
    assert "Traceback" not in result.stderr
    assert "no repository" not in result.stdout


def test_history_lists_the_recorded_runs_newest_first(tmp_path: Path) -> None:
    asyncio.run(_repositories_with_policies(tmp_path, ["app", "web"]))
    env = {name: None for name in os.environ if name.startswith("MOORAGE_")}
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    empty = runner.invoke(main, ["lifecycle", "history", *data], env=env)
    assert (empty.exit_code, empty.stdout) == (0, "no lifecycle run recorded\n")
    real = ["lifecycle", "run", "--repository", "app", *data]
    assert runner.invoke(main, real, env=env).exit_code == 0
    dry = ["lifecycle", "run", "--repository", "web", "--dry-run", *data]
    assert runner.invoke(main, dry, env=env).exit_code == 0
    result = runner.invoke(main, ["lifecycle", "history", *data], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f" {ACCOUNT}/web: would expire 0 images (dry run)")
    assert lines[1].endswith(f" {ACCOUNT}/app: expired 0 images")
    only = runner.invoke(main, ["lifecycle", "history", "--limit", "1", *data], env=env)
    assert only.stdout.splitlines() == lines[:1]
    app = runner.invoke(main, ["lifecycle", "history", "--repository", "app", *data], env=env)
    assert app.stdout.splitlines() == lines[1:]
