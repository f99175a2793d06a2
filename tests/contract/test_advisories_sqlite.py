"""The advisory records contract on SQLite."""

from __future__ import annotations

import pytest

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.advisory_suite")

from .advisory_suite import AdvisoryRecordsSuite  # noqa: E402
from .sql_stores import SqliteStore  # noqa: E402


class TestSqliteAdvisoryRecords(SqliteStore, AdvisoryRecordsSuite):
    pass
