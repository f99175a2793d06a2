import pytest

from moorage.domain.errors import InvalidName, InvalidTag
from moorage.domain.names import RepositoryName, Tag, matches_any


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "team-a/web-app",
        "a/b/c",
        "a__b",
        "a---b",
        "0x/y.z",
        "a" * 256,
        "project-a/nginx-web-app",
    ],
)
def test_accepts_ecr_repository_names(name: str) -> None:
    assert RepositoryName(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "a",  # shorter than 2
        "a" * 257,
        "Upper",
        "-lead",
        "trail-",
        "a//b",
        "a/../b",
        "../etc",
        "a/.",
        "a b",
        "a___b",  # three underscores are not a separator
        "a.-b",
        "a/",
        "/a",
        "a%2Fb",
    ],
)
def test_rejects_names_outside_the_grammar(name: str) -> None:
    with pytest.raises(InvalidName):
        RepositoryName(name)


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A-b_c.d", "a" * 128])
def test_accepts_oci_tags(tag: str) -> None:
    assert Tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".hidden", "-x", "a" * 129, "a/b", "a:b", "a b"])
def test_rejects_bad_tags(tag: str) -> None:
    with pytest.raises(InvalidTag):
        Tag(tag)


def test_create_on_push_patterns() -> None:
    assert matches_any("team-a/web", ["team-*"])
    assert matches_any("anything/at/all", ["*"])
    assert not matches_any("other", ["team-*"])
    assert not matches_any("other", [])
