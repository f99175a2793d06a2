"""The advisory database's compact JSON form: every field round-trips exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moorage.scanning.advisories import iter_records
from moorage.scanning.advisories.codec import UnreadableAdvisory, decode, encode
from moorage.scanning.advisories.model import Advisory, Affected, Range

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vulnscan" / "advisories"

FULL = Advisory(
    id="GHSA-xxxx-yyyy-zzzz",
    aliases=("CVE-2024-0001", "PYSEC-2024-1"),
    summary="Ünïcode summary",
    details="line one\nline two",
    severity="CRITICAL",
    cvss_v3_score=0.0,
    cvss_v3_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
    references=("https://example.test/a", "https://example.test/b"),
    published=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    modified=datetime(1, 1, 1, tzinfo=UTC),
    affected=(
        Affected(
            ecosystem="Debian:12",
            package="openssl",
            ranges=(
                Range("ECOSYSTEM", (("introduced", "0"), ("fixed", "3.0.11-1~deb12u2"))),
                Range("GIT", (("introduced", "abc"), ("last_affected", "def"), ("limit", "f00"))),
            ),
            versions=("3.0.9-1", "3.0.11-1~deb12u1"),
            fixed=("3.0.11-1~deb12u2",),
            severity="LOW",
        ),
        Affected(ecosystem="", package="", ranges=(Range("SEMVER", ()),), versions=(), fixed=()),
    ),
    source="debian.json",
)

MINIMAL = Advisory(
    id="X-1",
    aliases=(),
    summary="",
    details="",
    severity=None,
    cvss_v3_score=None,
    cvss_v3_vector=None,
    references=(),
    published=None,
    modified=None,
    affected=(),
    source="",
)


@pytest.mark.parametrize("advisory", [FULL, MINIMAL], ids=["every-field", "minimal"])
def test_round_trip(advisory: Advisory) -> None:
    assert decode(encode(advisory)) == advisory
    assert decode(encode(advisory).encode()) == advisory


def test_round_trip_of_the_fixture_records() -> None:
    # Every format the readers know (the folder grows with them); unreadable ones are theirs.
    records = list(iter_records(FIXTURES, on_error=lambda error: None))
    assert {"GO-2022-0378", "PSF-2024-6", "PYSEC-2023-246"} <= {a.id for a in records}
    for advisory in records:
        assert decode(encode(advisory)) == advisory


def test_the_form_is_compact() -> None:
    text = encode(MINIMAL)
    assert json.loads(text) == {"v": 1, "id": "X-1"}
    assert " " not in encode(FULL).replace("Ünïcode summary", "").replace("line one\\nline two", "")
    assert "Ünïcode" in encode(FULL)  # not escaped
    full = json.loads(encode(FULL))
    assert full["af"][0]["r"][1] == {"t": "GIT", "ev": [["i", "abc"], ["l", "def"], ["x", "f00"]]}
    assert full["af"][1] == {"r": [{"t": "SEMVER", "ev": []}]}


@pytest.mark.parametrize(
    "text",
    ["", "[]", '{"id": "X"}', '{"v": 2, "id": "X"}', '{"v": 1}', '{"v": 1, "id": "X", "pu": 5}'],
)
def test_what_is_not_an_advisory_is_refused(text: str) -> None:
    with pytest.raises(UnreadableAdvisory):
        decode(text)
