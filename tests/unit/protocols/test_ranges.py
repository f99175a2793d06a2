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


_HUGE = "9" * 4301  # past Python's int-from-string limit: int() raised, the server said 500


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"bytes=0-{_HUGE}", (0, 99)),  # a last position past the end is clamped (RFC 9110)
        (f"bytes=-{_HUGE}", (0, 99)),
        ("bytes=" + "0" * 5000 + "5-9", (5, 9)),  # leading zeros are not digits that count
    ],
)
def test_huge_numbers_in_satisfiable_ranges(header: str, expected: tuple[int, int]) -> None:
    assert parse_byte_range(header, 100) == expected


@pytest.mark.parametrize("header", [f"bytes={_HUGE}-", f"bytes={_HUGE}-{_HUGE}"])
def test_huge_start_is_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_byte_range(header, 100)


def test_non_ascii_digits_are_not_numbers() -> None:
    assert parse_byte_range("bytes=\u0661-\u0669", 100) is None
    with pytest.raises(UploadInvalid):
        parse_chunk_range("\u0661\u0660-\u0661\u0669")  # Arabic-Indic 10-19


def test_huge_chunk_range_is_read_without_converting() -> None:
    start, end = parse_chunk_range(f"0-{_HUGE}")
    assert start == 0
    assert end > 10**17
