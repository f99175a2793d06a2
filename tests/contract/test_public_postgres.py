"""The ECR Public records on Postgres."""

from __future__ import annotations

import pytest

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.public_suite")

from .public_suite import PublicRecordsSuite  # noqa: E402
from .sql_stores import PostgresStore  # noqa: E402

pytestmark = pytest.mark.postgres


class TestPostgresPublicRecords(PostgresStore, PublicRecordsSuite):
    pass
