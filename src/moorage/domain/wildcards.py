"""Glob matching in time bounded by the input: ``*`` (any run) and ``?`` (one character).

Policies, lifecycle tag patterns, tag-mutability exclusions and scanning filters all come from
clients, so a pattern must never cost more than its length times the candidate's. A regular
expression built by turning each ``*`` into ``.*`` backtracks exponentially on a pattern such as
``ecr:*************X`` (every way of splitting the candidate between the stars is tried). This
module matches as AWS and Go's ``path.Match`` do instead:

- the pattern is cut at its stars into *segments* of fixed length (literal characters and
  ``?``);
- the first segment must match at the start, the last at the end, and each middle segment is
  found at its leftmost position after the previous one. Leftmost is always safe: a later
  position leaves less room, never more, for the segments after it.

So a match costs at most ``len(candidate) * len(pattern)`` character comparisons, with no
backtracking across stars; segments without ``?`` (the usual case) use ``str.find``.

A piece of a pattern may be marked *literal* (text substituted from a policy variable): its
``*`` and ``?`` then match only themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

# One segment: its text, and the regular expression of it when it holds a ``?`` (a fixed-length
# expression without quantifiers cannot backtrack), else None.
_Segment = tuple[str, "re.Pattern[str] | None"]


@dataclass(frozen=True, slots=True)
class Wildcard:
    """A compiled pattern; :meth:`matches` tells whether it matches a whole candidate."""

    segments: tuple[_Segment, ...]
    starred: bool  # whether the pattern holds at least one ``*`` (segments then number >= 2)
    ignore_case: bool

    @classmethod
    def compile(cls, pattern: str, *, ignore_case: bool = False) -> Wildcard:
        """Compile *pattern*, in which every ``*`` and ``?`` is a wildcard."""
        return cls.from_pieces([(pattern, False)], ignore_case=ignore_case)

    @classmethod
    def from_pieces(
        cls, pieces: Iterable[tuple[str, bool]], *, ignore_case: bool = False
    ) -> Wildcard:
        """Compile ``(text, literal)`` pieces; a literal piece's ``*`` and ``?`` are plain."""
        segments: list[list[str | None]] = [[]]  # None stands for "?"
        for text, literal in pieces:
            if ignore_case:
                text = text.lower()
            for char in text:
                if literal:
                    segments[-1].append(char)
                elif char == "*":
                    segments.append([])
                elif char == "?":
                    segments[-1].append(None)
                else:
                    segments[-1].append(char)
        return cls(
            segments=tuple(_segment(chars) for chars in segments),
            starred=len(segments) > 1,
            ignore_case=ignore_case,
        )

    def matches(self, candidate: str) -> bool:
        """Whether the pattern matches the whole of *candidate*."""
        if self.ignore_case:
            candidate = candidate.lower()
        segments = self.segments
        if not self.starred:
            text, expression = segments[0]
            return len(candidate) == len(text) and _at(candidate, 0, text, expression)
        head, tail = segments[0], segments[-1]
        end = len(candidate) - len(tail[0])
        if end < len(head[0]) or not _at(candidate, 0, *head) or not _at(candidate, end, *tail):
            return False
        position = len(head[0])
        for text, expression in segments[1:-1]:
            if not text:
                continue  # "**": an empty segment matches anywhere
            found = _find(candidate, position, end, text, expression)
            if found < 0:
                return False
            position = found + len(text)
        return True


def _segment(chars: list[str | None]) -> _Segment:
    text = "".join("?" if char is None else char for char in chars)
    if None not in chars:
        return text, None
    expression = "".join("." if char is None else re.escape(char) for char in chars)
    return text, re.compile(expression, re.DOTALL)


def _at(candidate: str, position: int, text: str, expression: re.Pattern[str] | None) -> bool:
    """Whether the segment matches *candidate* exactly at *position*."""
    if expression is None:
        return candidate.startswith(text, position)
    return expression.match(candidate, position) is not None


def _find(
    candidate: str, start: int, end: int, text: str, expression: re.Pattern[str] | None
) -> int:
    """The leftmost position in ``[start, end)`` where the segment fits whole, or -1."""
    if expression is None:
        return candidate.find(text, start, end)
    found = expression.search(candidate, start, end)
    return -1 if found is None else found.start()


@lru_cache(maxsize=4096)
def compiled(pattern: str, ignore_case: bool = False) -> Wildcard:
    """:meth:`Wildcard.compile`, cached: requests are decided against the same few patterns."""
    return Wildcard.compile(pattern, ignore_case=ignore_case)


def glob_matches(pattern: str, candidate: str, *, ignore_case: bool = False) -> bool:
    """Whether *pattern* (``*`` and ``?`` wildcards) matches the whole of *candidate*."""
    return compiled(pattern, ignore_case).matches(candidate)


def star_matches(pattern: str, candidate: str) -> bool:
    """Whether *pattern*, whose only wildcard is ``*`` (``?`` is a plain character), matches
    the whole of *candidate*: the grammar of ECR's tag patterns and repository filters."""
    return star_wildcard(pattern).matches(candidate)


@lru_cache(maxsize=4096)
def star_wildcard(pattern: str) -> Wildcard:
    """The compiled form of a pattern whose only wildcard is ``*`` (see :func:`star_matches`)."""
    pieces = [(part, True) for part in pattern.split("*")]
    # Literal pieces joined by wildcard stars: "?" in the pattern stays a character.
    joined: list[tuple[str, bool]] = []
    for index, piece in enumerate(pieces):
        if index:
            joined.append(("*", False))
        joined.append(piece)
    return Wildcard.from_pieces(joined)
