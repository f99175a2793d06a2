"""The scan records contract on PostgreSQL (the server at 127.0.0.1:5432; see
``tests/postgres.py``). One database for the module, emptied after each test."""

from __future__ import annotations

import pytest

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.scan_suite")

from .scan_suite import ScanRecordsSuite  # noqa: E402
from .sql_stores import PostgresStore  # noqa: E402

pytestmark = pytest.mark.postgres


class TestPostgresScanRecords(PostgresStore, ScanRecordsSuite):
    pass
