"""Run the HTTP server: TLS, access log, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys

from aiohttp import web

from moorage.app import build_web_app, open_registry
from moorage.config import Settings

log = logging.getLogger("moorage")

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'


def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, on uvloop when it is installed."""
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we test
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(settings))


async def serve(settings: Settings) -> None:
    registry = await open_registry(settings)
    app = build_web_app(registry)
    app_runner = web.AppRunner(
        app,
        access_log=logging.getLogger("moorage.access") if settings.access_log else None,
        access_log_format=ACCESS_LOG_FORMAT,
        shutdown_timeout=settings.shutdown_timeout,
        handle_signals=False,
    )
    await app_runner.setup()
    try:
        site = web.TCPSite(
            app_runner, settings.host, settings.port, ssl_context=_ssl_context(settings)
        )
        await site.start()
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
    finally:
        # Stops accepting, then waits for running handlers up to shutdown_timeout.
        await app_runner.cleanup()
        await registry.close()
    log.info("stopped")


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
