"""Content digests (``algorithm:hex``) and a streaming hasher.

Grammar (OCI image-spec, descriptor.md): ``algorithm ":" encoded`` where the
registered algorithms are sha256 (64 lowercase hex) and sha512 (128 lowercase hex).
Other algorithms are syntactically valid but unsupported here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from moorage.domain.errors import DigestMismatch, InvalidDigest

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]+$")

SUPPORTED_ALGORITHMS = tuple(_HEX_LENGTHS)


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated digest of a supported algorithm."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``text``; raise :class:`InvalidDigest` unless it is a supported digest."""
        if not _GRAMMAR.match(text):
            raise InvalidDigest(f"invalid digest {text!r}")
        algorithm, _, encoded = text.partition(":")
        expected = _HEX_LENGTHS.get(algorithm)
        if expected is None:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != expected or not _HEX.match(encoded):
            raise InvalidDigest(f"invalid {algorithm} digest {text!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def is_digest(text: str) -> bool:
    """True when ``text`` has the shape of a digest (any algorithm), as opposed to a tag."""
    return ":" in text


class StreamingHasher:
    """Hash content as it streams past, in one algorithm.

    ``verify`` compares against the digest the client claimed once the stream ends.
    """

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _HEX_LENGTHS:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def copy(self) -> StreamingHasher:
        clone = StreamingHasher.__new__(StreamingHasher)
        clone.algorithm = self.algorithm
        clone._hash = self._hash.copy()
        clone.size = self.size
        return clone

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())

    def verify(self, expected: Digest) -> Digest:
        """Return the computed digest; raise :class:`DigestMismatch` if it is not ``expected``."""
        actual = self.digest()
        if actual != expected:
            raise DigestMismatch(
                f"content digest {actual} does not match {expected}",
                detail={"expected": str(expected), "actual": str(actual)},
            )
        return actual
