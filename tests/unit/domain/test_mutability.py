"""Tag mutability: the four modes, wildcard filters, and which filters a mode accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from moorage.domain.errors import InvalidParameter
from moorage.domain.models import Repository, TagMutability
from moorage.domain.mutability import check_mutability, tag_is_immutable, wildcard_matches

MUTABLE = TagMutability.MUTABLE
IMMUTABLE = TagMutability.IMMUTABLE
IMMUTABLE_WITH_EXCLUSION = TagMutability.IMMUTABLE_WITH_EXCLUSION
MUTABLE_WITH_EXCLUSION = TagMutability.MUTABLE_WITH_EXCLUSION


def repository(mode: TagMutability, *filters: str) -> Repository:
    return Repository(
        id=1,
        registry_id="123456789012",
        name="team/app",
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        image_tag_mutability=mode,
        mutability_exclusion_filters=filters,
    )


@pytest.mark.parametrize(
    ("wildcard", "tag", "matches"),
    [
        ("latest", "latest", True),
        # Without a star a filter names one tag: no prefix or substring match.
        ("latest", "latest-1", False),
        ("latest", "my-latest", False),
        ("dev-", "dev-1", False),
        ("dev-*", "dev-", True),  # the star matches the empty run too
        ("dev-*", "dev-feature.1", True),
        ("dev-*", "prod-dev-1", False),
        ("*-rc*", "1.0-rc1", True),
        ("*-rc*", "1.0-rc", True),
        ("*-rc*", "1.0", False),
        ("*", "anything_at.all-1", True),
        ("v*.*", "v1.2", True),
        ("v*.*", "v12", False),  # "." is a literal dot, not "any character"
        ("**", "x", True),
        ("Latest", "latest", False),  # case-sensitive, as tags are
    ],
)
def test_wildcard_matches_the_whole_tag(wildcard: str, tag: str, matches: bool) -> None:
    assert wildcard_matches(wildcard, tag) is matches


@pytest.mark.parametrize(
    ("mode", "filters", "tag", "immutable"),
    [
        (MUTABLE, (), "v1", False),
        (MUTABLE, (), "latest", False),
        (IMMUTABLE, (), "v1", True),
        (IMMUTABLE, (), "latest", True),
        (IMMUTABLE_WITH_EXCLUSION, ("latest", "dev-*"), "v1.0.0", True),
        (IMMUTABLE_WITH_EXCLUSION, ("latest", "dev-*"), "latest", False),
        (IMMUTABLE_WITH_EXCLUSION, ("latest", "dev-*"), "dev-42", False),
        (IMMUTABLE_WITH_EXCLUSION, ("latest", "dev-*"), "latest-1", True),
        (MUTABLE_WITH_EXCLUSION, ("release-*",), "release-1.0", True),
        (MUTABLE_WITH_EXCLUSION, ("release-*",), "latest", False),
        (MUTABLE_WITH_EXCLUSION, ("release-*", "v*"), "v2", True),
    ],
)
def test_tag_is_immutable_in_every_mode(
    mode: TagMutability, filters: tuple[str, ...], tag: str, immutable: bool
) -> None:
    assert tag_is_immutable(repository(mode, *filters), tag) is immutable


def test_the_default_repository_is_mutable() -> None:
    plain = Repository(1, "123456789012", "team/app", datetime(2024, 5, 1, tzinfo=UTC))
    assert plain.image_tag_mutability is MUTABLE
    assert tag_is_immutable(plain, "latest") is False


@pytest.mark.parametrize("mode", [IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION])
def test_exclusion_modes_need_one_to_five_valid_filters(mode: TagMutability) -> None:
    assert check_mutability(mode, ["latest"]) == ("latest",)
    five = [f"f{i}-*" for i in range(5)]
    assert check_mutability(mode, five) == tuple(five)
    for count in (0, 6):
        with pytest.raises(InvalidParameter, match="1 to 5 exclusion filters"):
            check_mutability(mode, [f"f{i}" for i in range(count)])
    for bad in ("", "a/b", "a?", "[ab]", "x" * 129, "tag with space"):
        with pytest.raises(InvalidParameter, match="regular expression"):
            check_mutability(mode, [bad])
    assert check_mutability(mode, ["x" * 128, "0-9._*"]) == ("x" * 128, "0-9._*")


@pytest.mark.parametrize("mode", [MUTABLE, IMMUTABLE])
def test_plain_modes_refuse_filters(mode: TagMutability) -> None:
    # Decision (reference §13.6 leaves it open): a filter would have no effect there.
    assert check_mutability(mode, []) == ()
    with pytest.raises(InvalidParameter, match="only be used with"):
        check_mutability(mode, ["latest"])
