"""Run the HTTP server: TLS, access log, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web

from moorage.app import Registry, build_public_app, build_web_app, open_registry
from moorage.config import Settings
from moorage.protocols.connections import ConnectionLimits, GuardedAppRunner
from moorage.workers.wiring import Workers, start_workers

log = logging.getLogger("moorage")

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'


def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, on the configured event loop."""
    if settings.event_loop == "uvloop":
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(settings))


async def serve(settings: Settings) -> None:
    registry = await open_registry(settings)
    if not settings.emulator and not await registry.identities.list_accounts():
        # A fresh install answers every request 401 until someone has credentials: say how.
        print(
            "moorage: no accounts yet; create the first with `moorage admin init` "
            "(same --data-dir/--config/--database-url), or run with --emulator for testing",
            file=sys.stderr,
            flush=True,
        )
    workers: Workers | None = None
    if settings.workers:
        workers = await start_workers(registry, required=False)
    app = build_web_app(registry)
    tracker = InFlightRequests()
    app.middlewares.insert(0, tracker.middleware)
    app.on_response_prepare.append(tracker.close_when_draining)
    app_runner = GuardedAppRunner(
        app,
        limits=connection_limits(settings),
        access_log=logging.getLogger("moorage.access") if settings.access_log else None,
        access_log_format=ACCESS_LOG_FORMAT,
        shutdown_timeout=settings.shutdown_timeout,
        handle_signals=False,
    )
    await app_runner.setup()
    public: tuple[web.TCPSite, web.AppRunner] | None = None
    try:
        site = web.TCPSite(
            app_runner, settings.host, settings.port, ssl_context=_ssl_context(settings)
        )
        await site.start()
        public = await _start_public_address(registry, settings, tracker)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        scheme = "https" if settings.tls_cert else "http"
        port = _bound_port(site) or settings.port
        print(
            f"moorage listening on {scheme}://{settings.host}:{port}", file=sys.stderr, flush=True
        )
        await stop.wait()
        log.info(
            "shutting down: finishing in-flight requests (up to %ss)", settings.shutdown_timeout
        )
        # Stop listening, then let requests in flight finish *while their connections stay
        # open*: aiohttp's own shutdown closes connections first, which cuts off a request
        # whose body is still arriving (an upload) and leaves its handler waiting.
        await site.stop()
        if public is not None:
            await public[0].stop()
        await tracker.drain(settings.shutdown_timeout)
    finally:
        # Closes what remains (idle keep-alive connections), waiting for any last handler.
        await app_runner.cleanup()
        if public is not None:
            await public[1].cleanup()
        if workers is not None:
            await workers.stop(settings.shutdown_timeout)
        await registry.close()
    log.info("stopped")


async def _start_public_address(
    registry: Registry, settings: Settings, tracker: InFlightRequests
) -> tuple[web.TCPSite, web.AppRunner] | None:
    """The public address's listener and its runner, when ``public_port`` is set."""
    if settings.public_port is None:
        return None
    app = build_public_app(registry)
    app.middlewares.insert(0, tracker.middleware)
    app.on_response_prepare.append(tracker.close_when_draining)
    runner = GuardedAppRunner(
        app,
        limits=connection_limits(settings),
        access_log=logging.getLogger("moorage.access") if settings.access_log else None,
        access_log_format=ACCESS_LOG_FORMAT,
        shutdown_timeout=settings.shutdown_timeout,
        handle_signals=False,
    )
    await runner.setup()
    site = web.TCPSite(
        runner, settings.host, settings.public_port, ssl_context=_ssl_context(settings)
    )
    await site.start()
    scheme = "https" if settings.tls_cert else "http"
    port = _bound_port(site) or settings.public_port
    print(
        f"moorage public address on {scheme}://{settings.host}:{port}",
        file=sys.stderr,
        flush=True,
    )
    return site, runner


class InFlightRequests:
    """Counts requests being handled, so that shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        self._active += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def close_when_draining(self, request: web.Request, response: web.StreamResponse) -> None:
        """While draining, tell keep-alive clients to go elsewhere for their next request."""
        if self.draining:
            response.force_close()

    async def drain(self, grace_seconds: float) -> None:
        """Wait until no request is running, or ``grace_seconds`` have passed."""
        self.draining = True
        try:
            async with asyncio.timeout(grace_seconds):
                await self._idle.wait()
        except TimeoutError:
            log.warning(
                "%d requests still running after %ss; closing them", self._active, grace_seconds
            )


# Descriptors kept for what is not a client connection: the database, blob files, logs.
_RESERVED_DESCRIPTORS = 64


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The settings' connection budget, with the connection cap kept under the open-file
    limit (raised to its hard limit first): past it, accept() fails and the server stops
    answering anyone, silently."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # keep the soft limit we have
    room = max(soft - _RESERVED_DESCRIPTORS, 16) if soft != resource.RLIM_INFINITY else None
    cap = settings.max_connections if room is None else min(settings.max_connections, room)
    if cap < settings.max_connections:
        log.warning(
            "max_connections is %d, but the open-file limit (%d) allows %d: using %d",
            settings.max_connections,
            soft,
            cap,
            cap,
        )
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
        body_timeout=settings.body_timeout,
        max_connections=cap,
    )


def _bound_port(site: web.TCPSite) -> int | None:
    server = site._server  # aiohttp keeps the asyncio server here; needed for --port 0
    sockets = getattr(server, "sockets", None)
    if sockets:
        port = sockets[0].getsockname()[1]
        return int(port)
    return None


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
