"""Emulator mode's own endpoint: ``POST /_moorage/reset`` wipes all state but the
background jobs' schedules (``Registry.wipe``).

Mounted only in emulator mode, for test suites that want a clean registry between tests
(as moto's ``reset`` and LocalStack's ``/_localstack/state/reset`` do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

RESET_PATH = "/_moorage/reset"
Wipe = Callable[[], Awaitable[None]]
RESET: web.AppKey[Wipe] = web.AppKey("moorage.emulator.reset")


async def reset(request: web.Request) -> web.Response:
    await request.app[RESET]()
    return web.json_response({"reset": True})


def mount(app: web.Application, wipe: Wipe) -> None:
    app[RESET] = wipe
    app.router.add_post(RESET_PATH, reset)
