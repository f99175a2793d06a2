"""The registry scanning configuration records on SQLite."""

from __future__ import annotations

import pytest

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.scanning_configuration_suite")

from .scanning_configuration_suite import ScanningConfigurationSuite  # noqa: E402
from .sql_stores import SqliteStore  # noqa: E402


class TestSqliteScanningConfiguration(SqliteStore, ScanningConfigurationSuite):
    pass
