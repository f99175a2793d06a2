"""One real ``moorage serve --create-on-push '*'`` process per conformance module.

Each module names its repository in a module-level ``REPOSITORY`` (``conformance/<workflow>``)
and gets a fresh server, a fresh set of test content and a client bound to that repository.
The workflows are ordered, stateful sequences, as upstream: run a module whole and in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conformance.client import RegistryClient
from tests.conformance.content import SuiteContent
from tests.e2e.server import ServerProcess


@pytest.fixture(scope="module")
def registry_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir=tmp_path_factory.mktemp("conformance") / "data").start()
    yield process
    code = process.stop()
    assert code == 0, process.log()


@pytest.fixture(scope="module")
def client(
    request: pytest.FixtureRequest, registry_process: ServerProcess
) -> Iterator[RegistryClient]:
    repository = request.module.REPOSITORY
    with requests.Session() as session:
        session.headers["User-Agent"] = "moorage-conformance-tests"
        yield RegistryClient(registry_process.url, repository, session)


@pytest.fixture(scope="module")
def content() -> SuiteContent:
    return SuiteContent()
