"""HTTP connections held to a budget: timeouts, a connection cap, and errors before a request.

aiohttp parses requests and runs handlers; what it leaves open is what a hostile client uses
to hold the server with nothing but sockets. This module closes those gaps, for every route:

- **Header timeout** (``header_timeout``, nginx's ``client_header_timeout``): from the first
  byte of a request to the end of its headers. A slowloris that sends a header line now and
  then is closed.
- **Idle timeout** (``idle_timeout``, nginx's ``keepalive_timeout``): a connection with no
  request is closed after this long, whether it never sent one or finished its last one.
  aiohttp's own keep-alive timer does this; without a value it waits an hour.
- **Body timeout** (``body_timeout``, nginx's ``client_body_timeout``): between two reads of a
  request body. Time during which the *server* does not read (its buffer is full, the disk is
  slow) does not count. The body's reader then fails with :class:`RequestBodyTimeout`, which
  each protocol answers in its own form (408), and the connection closes.
- **Connection cap** (``max_connections``): past it, a connection is closed to make room: the
  oldest one stuck in an unfinished request head, else the longest-idle keep-alive one (nginx
  reuses keep-alive connections the same way); when there is neither, the new one. Logged
  once per minute at most.
- **Refusals before the body** (:func:`discard_unread_body`): an answer given before a large
  body was read (no valid credentials, a body past its limit) closes the connection instead
  of letting aiohttp read and drop the rest for up to 10 s, which a client sending garbage as
  fast as it can turns into the server's cost.
- **Refusals in a loop** (:class:`RefusalThrottle`): an address refused again and again
  (no credentials, bad ones) is answered after a second's pause once past its burst.
- **Errors before a request exists** (a request line or header over aiohttp's limits, a bad
  method) are answered in the OCI error form with their own status (414, 431, 400) instead of
  aiohttp's plain text. Bytes that are not HTTP at all (a TLS hello: skopeo probes for TLS
  first) are one debug line, not an access-log error.

The watchdog that enforces the timeouts is one task per server that looks at every connection
about once a second (more often when a timeout is shorter), so a connection costs no timer.
It reads a few of aiohttp's private fields (named where used); tests/e2e/test_hostile_clients.py
drives each case over raw sockets, so an aiohttp upgrade that moves them fails there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadStatusLine, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from moorage.domain.errors import RequestBodyTimeout

log = logging.getLogger("moorage.connections")


# aiohttp's parser limits, in bytes: the request line may be longer than one header (a long
# query), and the two must differ, since LineTooLong says which limit it hit only by its
# number: 414 for the request line, 431 for a header.
MAX_REQUEST_LINE = 16384
MAX_HEADER_FIELD = 8190


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The budget of each connection; see the module docstring. Seconds, and a count."""

    header_timeout: float = 60.0
    idle_timeout: float = 75.0
    body_timeout: float = 60.0
    max_connections: int = 4096


class _RateLimitedWarning:
    """A warning logged at most once per ``interval`` seconds, with the count in between."""

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._last = -interval
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} more since the last such line)" if self._suppressed else ""
        log.warning(message + suffix, *args)
        self._last, self._suppressed = now, 0


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with the header and body timeouts and OCI-form errors."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = manager
        self.partial_since: float | None = None  # first byte of an unfinished request head
        self.last_data = 0.0
        self.quiet = False  # this connection's error is not worth an access-log line

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.last_data = self._loop.time()
        super().connection_made(transport)
        self.guard.admit(self)

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        self.last_data = now
        # Between requests: no handler running and no complete head queued (aiohttp's fields).
        waiting = not self._request_in_progress and not self._messages
        super().data_received(data)
        if self._messages:
            self.partial_since = None
        elif waiting and self.partial_since is None:
            self.partial_since = now

    # -- the watchdog's questions -------------------------------------------------------------

    def reading_body(self) -> BaseRequest | None:
        """The request whose body is still arriving, or None."""
        request = self._current_request
        if request is None or request.content.is_eof():
            return None
        return request

    def server_paused(self) -> bool:
        """Whether the server itself stopped reading (its buffer is full)."""
        return bool(self._reading_paused)

    def idle(self) -> bool:
        """No request in progress and none arriving: closing it loses nothing."""
        waiting = self._waiter is not None and not self._waiter.done()
        return waiting and self.partial_since is None and not self._messages

    # -- errors before a request exists -----------------------------------------------------

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; the connection is closed")
        code, text = "UNKNOWN", "internal server error"
        if isinstance(exc, LineTooLong):
            # The exception names the limit it hit; the two limits differ (GuardedServer).
            limit = exc.args[1] if len(exc.args) > 1 else None
            if limit == MAX_REQUEST_LINE:
                status, text = 414, "the request line is longer than the server accepts"
            else:
                status, text = 431, "a request header is longer than the server accepts"
            code = "UNSUPPORTED"
            log.info("refused a request from %s: %s", request.remote, text)
        elif isinstance(exc, BadStatusLine):
            # Not HTTP: a TLS hello (skopeo probes for TLS), a scanner, noise.
            status, code, text = 400, "UNSUPPORTED", "the request is not HTTP/1.1"
            self.quiet = True
            log.debug("not an HTTP request from %s: %s", request.remote, exc)
        elif status < 500:
            code, text = "UNSUPPORTED", message or "malformed request"
            log.info("refused a malformed request from %s: %s", request.remote, text)
        else:
            self.log_exception("error handling a request from %s", request.remote, exc_info=exc)
        body = json.dumps({"errors": [{"code": code, "message": text, "detail": None}]})
        response = web.Response(status=status, text=body, content_type="application/json")
        response.force_close()
        return response

    def log_access(
        self, request: BaseRequest, response: web.StreamResponse, request_start: float | None
    ) -> None:
        if self.quiet:
            return
        super().log_access(request, response, request_start)


class GuardedServer(web.Server):
    """aiohttp's server with :class:`GuardedRequestHandler` connections and their watchdog."""

    def __init__(
        self,
        handler: Callable[[BaseRequest], Awaitable[web.StreamResponse]],
        *,
        limits: ConnectionLimits,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("keepalive_timeout", limits.idle_timeout)
        kwargs.setdefault("max_line_size", MAX_REQUEST_LINE)
        kwargs.setdefault("max_field_size", MAX_HEADER_FIELD)
        super().__init__(handler, **kwargs)
        self.limits = limits
        self._watchdog: asyncio.Task[None] | None = None
        self._over_cap = _RateLimitedWarning()
        self._tick = max(0.05, min(1.0, limits.header_timeout / 4, limits.body_timeout / 4))

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)

    def admit(self, handler: GuardedRequestHandler) -> None:
        """Keep the count of connections within the cap (module docstring)."""
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = self._loop.create_task(self._watch())
        excess = len(self._connections) - self.limits.max_connections
        if excess <= 0:
            return
        self._over_cap(
            "%d connections: the cap (max_connections) is reached; "
            "closing idle ones, and new ones when none is idle",
            len(self._connections),
        )
        for other in self._eviction_order(handler):
            if excess <= 0:
                return
            other.force_close()
            excess -= 1
        handler.force_close()

    def _eviction_order(self, newcomer: GuardedRequestHandler) -> list[GuardedRequestHandler]:
        """Who makes room: connections stuck in an unfinished request head, oldest first (a
        slowloris holds many), then idle keep-alive ones, longest idle first. Connections
        running a request are never closed for the cap."""
        stalled: list[tuple[float, GuardedRequestHandler]] = []
        idle: list[tuple[float, GuardedRequestHandler]] = []
        for other in self._connections:
            if other is newcomer or not isinstance(other, GuardedRequestHandler):
                continue
            if other.partial_since is not None and not other._messages:
                stalled.append((other.partial_since, other))
            elif other.idle():
                idle.append((other.last_data, other))
        stalled.sort(key=lambda pair: pair[0])
        idle.sort(key=lambda pair: pair[0])
        return [handler for _, handler in stalled] + [handler for _, handler in idle]

    async def _watch(self) -> None:
        """Enforce the header and body timeouts; runs while the server has connections."""
        limits = self.limits
        while self._connections:
            await asyncio.sleep(self._tick)
            now = self._loop.time()
            for handler in list(self._connections):
                if isinstance(handler, GuardedRequestHandler):
                    self._check(handler, now, limits)

    def _check(self, handler: GuardedRequestHandler, now: float, limits: ConnectionLimits) -> None:
        started = handler.partial_since
        if started is not None and now - started > limits.header_timeout:
            log.info(
                "closing a connection from %s: no complete request head within %ss",
                _peer(handler),
                limits.header_timeout,
            )
            handler.force_close()
            return
        request = handler.reading_body()
        if request is None:
            return
        if handler.server_paused():
            handler.last_data = now  # our own backpressure is not the client's silence
            return
        if now - handler.last_data > limits.body_timeout:
            log.info(
                "request body from %s stalled for %ss: %s %s",
                request.remote,
                limits.body_timeout,
                request.method,
                request.path[:200],
            )
            request.content.set_exception(
                RequestBodyTimeout(f"no body bytes arrived for {limits.body_timeout:g} seconds")
            )
            # After the answer, close instead of reading on: aiohttp would otherwise read the
            # rest of the body for its lingering time, and meet the exception again.
            handler._lingering_time = 0.0
            handler.close()
            handler.last_data = now  # one exception per stall


# Bodies up to this size are still read after an early answer (cheap, and the client then
# surely sees the answer rather than a reset); larger or chunked ones are not.
_DRAINED_BODY_SIZE = 64 * 1024


def discard_unread_body(request: BaseRequest) -> None:
    """After the response to ``request``, close its connection rather than read the rest of
    a large body nobody will use (module docstring). Nothing to do once the body is read."""
    declared = request.content_length
    if request.content.is_eof() or (declared is not None and declared <= _DRAINED_BODY_SIZE):
        return
    protocol = request.protocol
    if isinstance(protocol, RequestHandler):
        # aiohttp reads an unread body for _lingering_time after the response, so that a
        # client still sending sees the answer; this client is refused whatever it sends.
        protocol._lingering_time = 0.0
        protocol.close()


class RefusalThrottle:
    """Slows down a client address that is refused again and again (no or bad credentials).

    Each address has a bucket of ``burst`` refusals that refills at ``rate`` per second; a
    refusal past it is answered after ``delay`` seconds times the refusals it is short of the
    bucket (one short: ``delay``), at most ``max_delay``, instead of at once. The debt is
    bounded by ``burst``, so a flood is forgiven within ``2 * burst / rate`` seconds of its
    end. The delay grows because a flood of many connections at once would otherwise cost
    a refusal a second per connection, and on a small machine that is still noticeable to
    the honest clients sharing its cores (measured by ``python -m bench.abuse``). A client that
    retries a refused request as fast as it can (reconnecting each time, with a large body:
    the cheapest way to make the server work for nothing) then costs a sleeping coroutine
    per connection instead of a core, and the connection cap bounds those. An honest client
    is refused now and then (an expired token) and never waits; docker's anonymous probe of
    ``/v2/`` is a challenge, not a refusal, and is not counted (see the OCI error
    middleware). Addresses are forgotten least recently refused first past
    ``max_addresses``.
    """

    def __init__(
        self,
        *,
        burst: float = 20,
        rate: float = 10,
        delay: float = 1.0,
        max_delay: float = 5.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.burst, self.rate, self.delay, self.max_delay = burst, rate, delay, max_delay
        self.max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def refused(self, address: str | None, now: float | None = None) -> float:
        """Count a refusal of ``address``; the seconds to wait before answering it."""
        if address is None:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(address, (self.burst, now))
        tokens = max(min(self.burst, tokens + (now - at) * self.rate) - 1, -self.burst)
        self._buckets[address] = (tokens, now)  # re-inserted: most recent last
        while len(self._buckets) > self.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        if tokens >= 0:
            return 0.0
        return min(self.max_delay, self.delay * max(1.0, -tokens))


REFUSAL_THROTTLE = web.AppKey("moorage.refusal_throttle", RefusalThrottle)
"""The application's throttle: every protocol's refusals of an address count together."""


async def pause_after_refusal(request: web.Request) -> None:
    """Before answering ``request`` with a refusal, wait as the application's
    :class:`RefusalThrottle` says (not at all in an application without one)."""
    throttle = request.config_dict.get(REFUSAL_THROTTLE)
    if throttle is not None:
        delay = throttle.refused(request.remote)
        if delay:
            await asyncio.sleep(delay)


def _peer(handler: RequestHandler) -> str:
    transport = handler.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else "?"


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server is a :class:`GuardedServer`."""

    def __init__(self, app: web.Application, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    async def _make_server(self) -> web.Server:
        # AppRunner._make_server and Application._make_handler, with our server class.
        loop = asyncio.get_running_loop()
        app = self._app
        app._set_loop(loop)
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        kwargs = dict(self._kwargs)
        kwargs["debug"] = app._debug
        return GuardedServer(
            app._handle,  # type: ignore[arg-type]
            limits=self._limits,
            request_factory=app._make_request,
            loop=loop,
            **kwargs,
        )
