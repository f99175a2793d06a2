import pytest

from moorage.domain.errors import UploadInvalid
from moorage.protocols.oci.ranges import (
    UnsatisfiableRange,
    parse_byte_range,
    parse_chunk_range,
    upload_range,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=0-1,5-6", None),  # multiple ranges: serve it all
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=9-5", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_byte_range(header, 100)


def test_chunk_ranges() -> None:
    assert parse_chunk_range(None) is None
    assert parse_chunk_range("0-99") == (0, 99)
    assert parse_chunk_range("bytes 100-199") == (100, 199)
    assert parse_chunk_range("10-5") == (10, 5)  # backwards: the service answers 416


@pytest.mark.parametrize("header", ["", "abc", "0-", "-5", "1-2-3", "bytes=a-b"])
def test_malformed_chunk_ranges(header: str) -> None:
    with pytest.raises(UploadInvalid):
        parse_chunk_range(header)


def test_upload_range_header() -> None:
    assert upload_range(0) == "0-0"
    assert upload_range(10) == "0-9"
