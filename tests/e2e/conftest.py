from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import Credentials, admin_init
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


@dataclass(frozen=True)
class IamServer:
    """A server without emulator mode or create-on-push (as ECR behaves), and the access key
    of its account's admin user from ``moorage admin init``."""

    process: ServerProcess
    admin: Credentials

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamServer]:
    """One IAM-enforcing server shared by a module's tests (which use names of their own)."""
    data_dir = tmp_path_factory.mktemp("iam") / "data"
    admin = admin_init(data_dir)
    process = ServerProcess(data_dir=data_dir, extra_args=[], emulator=False).start()
    yield IamServer(process, admin)
    code = process.stop()
    assert code == 0, process.log()
