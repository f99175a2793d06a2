"""Glob matching without backtracking: the same answers as a regular expression, on any input.

The adversarial cases below made the regex-based matcher take minutes (``ecr:`` + 12 stars +
``X`` against an action name took 49 s): each is now a bounded amount of work, so these tests
finishing at all is the regression check. How fast they are is measured in ``bench.abuse``.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from moorage.domain.wildcards import Wildcard, glob_matches, star_matches


def _regex_answer(pattern: str, candidate: str) -> bool:
    """The old definition, fine on small inputs: the reference to compare with."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.fullmatch("".join(parts), candidate, re.DOTALL) is not None


def test_basic_answers() -> None:
    assert glob_matches("ecr:*", "ecr:BatchGetImage")
    assert glob_matches("ecr:Batch*Image", "ecr:BatchGetImage")
    assert not glob_matches("ecr:Batch*Image", "ecr:BatchGetImages")
    assert glob_matches("ecr:?etAuthorizationToken", "ecr:GetAuthorizationToken")
    assert not glob_matches("ecr:?", "ecr:")
    assert glob_matches("a*b*c", "abc")
    assert glob_matches("a*b*c", "aXbYbZc")
    assert not glob_matches("ab*ba", "aba")  # head and tail may not overlap
    assert glob_matches("**", "")
    assert glob_matches("", "")
    assert not glob_matches("", "a")
    assert glob_matches("ECR:batch*", "ecr:BatchGetImage", ignore_case=True)
    assert not glob_matches("ECR:batch*", "ecr:BatchGetImage")


def test_literal_pieces_do_not_wildcard() -> None:
    wildcard = Wildcard.from_pieces([("repo/", False), ("a*", True), ("/*", False)])
    assert wildcard.matches("repo/a*/x")
    assert not wildcard.matches("repo/abc/x")


def test_star_matches_treats_question_mark_as_a_character() -> None:
    assert star_matches("v1.?", "v1.?")
    assert not star_matches("v1.?", "v1.2")
    assert star_matches("prod-*", "prod-2024")


def test_adversarial_patterns_are_bounded() -> None:
    action = "ecr:BatchCheckLayerAvailability"
    for stars in (12, 40, 1000):
        assert not glob_matches("ecr:" + "*" * stars + "X", action)
        assert not glob_matches("*a" * stars + "X", "a" * 5000)
        assert not glob_matches("?*" * stars + "X", "a" * 5000)
        assert glob_matches("*a" * stars, "a" * 5000)
    assert not star_matches("*a" * 64 + "b", "a" * 128)


@given(
    st.text(alphabet="ab*?", max_size=8),
    st.text(alphabet="ab?*", max_size=10),
)
def test_same_answers_as_the_regular_expression(pattern: str, candidate: str) -> None:
    assert glob_matches(pattern, candidate) == _regex_answer(pattern, candidate)
