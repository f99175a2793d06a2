"""``moorage gc`` end to end in-process: one summary line on stdout, a bar per phase on
stderr, although phases do not know their totals before they end."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from moorage.cli import main
from moorage.services.gc import PHASES


def test_gc_prints_a_summary_and_a_bar_per_phase(tmp_path: Path) -> None:
    env = {name: None for name in os.environ if name.startswith("MOORAGE_")}
    result = CliRunner().invoke(
        main, ["gc", "--data-dir", str(tmp_path), "--grace-period", "0"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "freed 0 B: 0 blobs, 0 referrers, 0 upload sessions, 0 orphan files"
    )
    for phase in PHASES:
        assert phase in result.stderr
