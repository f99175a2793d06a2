"""``moorage gc`` end to end in-process: one summary line on stdout, a bar per phase on
stderr, although phases do not know their totals before they end."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from click.testing import CliRunner

from moorage.cli import main
from moorage.cli_gc import _ProgressBars
from moorage.services.gc import PHASES, GcProgress


def test_gc_prints_a_summary_and_a_bar_per_phase(tmp_path: Path) -> None:
    env = {name: None for name in os.environ if name.startswith("MOORAGE_")}
    result = CliRunner().invoke(
        main, ["gc", "--data-dir", str(tmp_path), "--grace-period", "0"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "freed 0 B: 0 blobs, 0 referrers, 0 upload sessions, 0 orphan files"
    )
    # Not a terminal: one line per phase as it ends, not bare names or bars stuck at 0%.
    assert result.stderr.splitlines() == [f"{phase}: 0 handled" for phase in PHASES]


def test_bars_on_a_terminal_end_complete_even_for_empty_phases() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with _ProgressBars(stream) as bars:
        bars.update(GcProgress("blobs", 0, 0))
        bars.update(GcProgress("orphan blob files", 2))
        bars.update(GcProgress("orphan blob files", 5, 5))
    drawn = stream.getvalue()
    assert "blobs" in drawn
    assert re.search(r"(?<![0-9])0%", drawn) is None
    assert drawn.count("100%") >= 2
