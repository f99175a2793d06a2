"""Admission of upload bodies: a cap in total, per account and per client address.

Each body being written holds buffers and a connection for as long as its client takes, and
a client decides how long that is. With only a total cap, 64 clients that each trickle a
byte every few seconds made every other push on the server, from any account, get 429. So a
body needs a slot in all three pools; one account, or one address, can only ever fill its own
share, and the others keep theirs. (The body timeout in ``protocols/connections.py`` bounds
how long a silent client keeps its slot.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moorage.domain.errors import TooManyRequests


@dataclass(frozen=True, slots=True)
class WriteLimits:
    total: int = 256
    per_account: int = 64
    per_client: int = 32


class WriteSlots:
    """Counts the bodies being written; :meth:`hold` admits one more or refuses it."""

    def __init__(self, limits: WriteLimits) -> None:
        self.limits = limits
        self.in_use = 0
        self._accounts: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()

    @contextmanager
    def hold(self, account: str, client: str | None) -> Iterator[None]:
        """A slot for one body of ``account`` sent from ``client`` (an IP address, or None
        when unknown), for the duration of the ``with``. Raises TooManyRequests (retry
        shortly) when any of the three pools is full."""
        limits = self.limits
        if self.in_use >= limits.total:
            self._refuse(f"{self.in_use} uploads are being written")
        if self._accounts[account] >= limits.per_account:
            self._refuse(f"this account has {self._accounts[account]} uploads being written")
        if client is not None and self._clients[client] >= limits.per_client:
            self._refuse(f"this client has {self._clients[client]} uploads being written")
        self.in_use += 1
        self._accounts[account] += 1
        if client is not None:
            self._clients[client] += 1
        try:
            yield
        finally:
            self.in_use -= 1
            _release(self._accounts, account)
            if client is not None:
                _release(self._clients, client)

    @staticmethod
    def _refuse(reason: str) -> None:
        raise TooManyRequests(f"{reason}; retry shortly", detail={"retry_after_seconds": 1})


def _release(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]  # an address seen once must not stay in memory
