"""Tag mutability: which tags a push may move, and which exclusion filters are valid.

ECR's four modes (shared reference §4.2)::

    MUTABLE                     every tag may move
    IMMUTABLE                   no tag may move
    IMMUTABLE_WITH_EXCLUSION    no tag may move, except those matching a filter
    MUTABLE_WITH_EXCLUSION      every tag may move, except those matching a filter

"Move" means pointing an existing tag at another image: creating a tag, and pushing the
same image again under a tag it already has, are never refused.

Filters are ECR ``WILDCARD`` filters. Our decisions where AWS leaves it open (reference §13.6):

- a filter matches the **whole** tag; ``*`` matches any run of characters, the empty run
  included, and every other character matches itself (``.`` is a dot, not "any character").
  So ``latest`` matches only ``latest``, ``dev-*`` matches ``dev-`` and ``dev-123``, and
  ``*-rc*`` matches ``1.0-rc1``. Matching is case-sensitive, as tags are;
- the ``*_WITH_EXCLUSION`` modes need 1 to 5 filters, and ``MUTABLE``/``IMMUTABLE`` take none
  (a filter there would have no effect, so it is refused rather than silently ignored).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from moorage.domain.errors import InvalidParameter
from moorage.domain.models import Repository, TagMutability
from moorage.domain.wildcards import star_matches

EXCLUSION_FILTER_PATTERN = r"^[0-9a-zA-Z._*-]{1,128}$"
_EXCLUSION_FILTER = re.compile(EXCLUSION_FILTER_PATTERN)
MAX_EXCLUSION_FILTERS = 5

_WITH_EXCLUSION = frozenset(
    {TagMutability.IMMUTABLE_WITH_EXCLUSION, TagMutability.MUTABLE_WITH_EXCLUSION}
)


def wildcard_matches(wildcard: str, tag: str) -> bool:
    """True when ``wildcard`` (``*`` = any run of characters) matches the whole ``tag``, in
    time bounded by their lengths (:mod:`moorage.domain.wildcards`)."""
    return star_matches(wildcard, tag)


def tag_is_immutable(repository: Repository, tag: str) -> bool:
    """True when ``repository``'s settings forbid moving ``tag`` to another image."""
    mode = repository.image_tag_mutability
    if mode is TagMutability.MUTABLE:
        return False
    if mode is TagMutability.IMMUTABLE:
        return True
    excluded = any(wildcard_matches(f, tag) for f in repository.mutability_exclusion_filters)
    if mode is TagMutability.IMMUTABLE_WITH_EXCLUSION:
        return not excluded
    return excluded  # MUTABLE_WITH_EXCLUSION


def check_mutability(mode: TagMutability, filters: Sequence[str]) -> tuple[str, ...]:
    """The filters to store with ``mode``, once they satisfy ECR's rules (module docstring).

    Raises InvalidParameter, with ECR's ``Invalid parameter at ...`` wording.
    """
    if mode not in _WITH_EXCLUSION:
        if filters:
            raise InvalidParameter(
                "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy "
                f"constraint: 'Exclusion filters can only be used with the "
                f"IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION image tag mutability, "
                f"not with {mode.value}'"
            )
        return ()
    if not 1 <= len(filters) <= MAX_EXCLUSION_FILTERS:
        raise InvalidParameter(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy "
            f"constraint: '{mode.value} needs 1 to {MAX_EXCLUSION_FILTERS} exclusion filters'"
        )
    for value in filters:
        if not _EXCLUSION_FILTER.fullmatch(value):
            raise InvalidParameter(
                "Invalid parameter at 'imageTagMutabilityExclusionFilters.filter' failed to "
                f"satisfy constraint: 'must satisfy regular expression "
                f"'{EXCLUSION_FILTER_PATTERN}''",
                detail={"filter": value[:128]},
            )
    return tuple(filters)
