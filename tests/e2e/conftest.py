from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import ServerProcess

StartServer = Callable[..., ServerProcess]
CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether a test's body failed, for fixtures whose teardown checks would only
    repeat the failure."""
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir=tmp_path / "data").start()
    yield process
    code = process.stop()
    assert code == 0, process.log()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server (with ``--create-on-push '*'``) shared by the tests of a module, which
    therefore use repository names of their own."""
    process = ServerProcess(data_dir=tmp_path_factory.mktemp("shared") / "data").start()
    yield process
    code = process.stop()
    assert code == 0, process.log()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers with custom options; each one still running at the end must stop
    cleanly (exit 0) on SIGTERM. A test that kills one is responsible for it."""
    started: list[ServerProcess] = []

    def start(**options: Any) -> ServerProcess:
        options.setdefault("data_dir", tmp_path / "data")
        process = ServerProcess(**options).start()
        started.append(process)
        return process

    yield start
    failures = []
    for process in started:
        if process.running and process.stop() != 0:
            failures.append(process.log())
    assert not failures, failures[0]
