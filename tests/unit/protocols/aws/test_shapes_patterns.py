"""The ECR model's string patterns cannot be made to backtrack by the input.

Each pattern is run on inputs built to make a backtracking engine try every split (runs of one
character class, alternating separators, then a character that fails the match), in a child
process with a deadline: one pattern that backtracks exponentially would hold it for hours.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import botocore.session
from hypothesis import given
from hypothesis import strategies as st

from moorage.protocols.aws.shapes import SAFE_PATTERNS


def _model_patterns() -> set[str]:
    model = botocore.session.get_session().get_service_model("ecr")
    found = set()
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern:
            found.add(pattern)
    return found


def test_every_model_pattern_is_fast_on_adversarial_input() -> None:
    script = textwrap.dedent(
        """
        import sys
        from moorage.protocols.aws.shapes import _compiled
        pieces = ["a", "0", "*", "-", ".", "_", "/", "a-", "a.", "a/", "a_", "a__", "A", ":"]
        for pattern in sys.argv[1:]:
            compiled = _compiled(pattern)
            for piece in pieces:
                for bad in ("!", "--", "/", " "):
                    compiled.fullmatch(piece * 300 + bad)
                    compiled.fullmatch("a" + piece * 300 + bad)
        """
    )
    patterns = sorted(_model_patterns())
    assert len(patterns) > 5
    # Exponential backtracking on 300 repetitions would take longer than the universe has
    # existed; linear matching takes milliseconds.
    subprocess.run([sys.executable, "-c", script, *patterns], check=True, timeout=60)


_FILTER = r"^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$"


def test_the_filter_pattern_is_rewritten() -> None:
    assert _FILTER in _model_patterns()
    assert _FILTER in SAFE_PATTERNS


@given(st.text(alphabet="a*._-/!", max_size=12))
def test_rewrites_accept_what_the_model_accepts(candidate: str) -> None:
    for original, safe in SAFE_PATTERNS.items():
        assert (re.fullmatch(original, candidate) is None) == (
            re.fullmatch(safe, candidate) is None
        )
