"""The lifecycle records contract on SQLite."""

from __future__ import annotations

import pytest

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.lifecycle_suite")

from .lifecycle_suite import LifecycleRecordsSuite  # noqa: E402
from .sql_stores import SqliteStore  # noqa: E402


class TestSqliteLifecycleRecords(SqliteStore, LifecycleRecordsSuite):
    pass
