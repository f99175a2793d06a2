import hashlib

import pytest

from moorage.domain.digests import Digest, StreamingHasher, is_digest
from moorage.domain.errors import DigestMismatch, InvalidDigest

SHA256_EMPTY = "sha256:" + hashlib.sha256(b"").hexdigest()


def test_parse_round_trips_sha256_and_sha512() -> None:
    sha512 = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert str(Digest.parse(SHA256_EMPTY)) == SHA256_EMPTY
    assert Digest.parse(sha512).algorithm == "sha512"


@pytest.mark.parametrize(
    "text",
    [
        "sha256:abc",  # too short
        "sha256:" + "A" * 64,  # uppercase hex is not canonical
        "sha256:" + "g" * 64,
        "md5:" + "a" * 32,  # unsupported algorithm
        "sha256" + "a" * 64,
        "",
        "sha256:../../etc/passwd",
        "sha512:" + "a" * 64,  # sha512 needs 128 hex characters
    ],
)
def test_parse_rejects_malformed_and_unsupported(text: str) -> None:
    with pytest.raises(InvalidDigest):
        Digest.parse(text)


def test_of_hashes_the_exact_bytes() -> None:
    assert Digest.of(b"") == Digest.parse(SHA256_EMPTY)
    assert Digest.of(b"a", "sha512").hex == hashlib.sha512(b"a").hexdigest()


def test_streaming_hasher_counts_and_verifies() -> None:
    hasher = StreamingHasher()
    for chunk in (b"hello ", b"world"):
        hasher.update(chunk)
    assert hasher.size == 11
    expected = Digest.of(b"hello world")
    assert hasher.verify(expected) == expected
    with pytest.raises(DigestMismatch):
        hasher.verify(Digest.of(b"something else"))


def test_copy_is_independent() -> None:
    hasher = StreamingHasher()
    hasher.update(b"a")
    clone = hasher.copy()
    clone.update(b"b")
    assert hasher.digest() == Digest.of(b"a")
    assert clone.digest() == Digest.of(b"ab")


def test_is_digest_tells_digests_from_tags() -> None:
    assert is_digest(SHA256_EMPTY)
    assert not is_digest("latest")
