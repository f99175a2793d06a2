"""Emulator mode's own endpoints: ``POST /_moorage/reset`` wipes all state but the
background jobs' schedules (``Registry.wipe``), and ``POST /moto-api/reset`` does the same
for test suites written for moto's server mode.

Mounted only in emulator mode, for test suites that want a clean registry between tests
(as moto's ``reset`` and LocalStack's ``/_localstack/state/reset`` do). moto's
``mock_aws`` in server mode (``TEST_SERVER_MODE=true``) posts ``/moto-api/reset`` to
``TEST_SERVER_MODE_ENDPOINT`` before and after every test; it answers as moto does,
``{"status": "ok"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

RESET_PATH = "/_moorage/reset"
MOTO_RESET_PATH = "/moto-api/reset"
Wipe = Callable[[], Awaitable[None]]
RESET: web.AppKey[Wipe] = web.AppKey("moorage.emulator.reset")


async def reset(request: web.Request) -> web.Response:
    await request.app[RESET]()
    return web.json_response({"reset": True})


async def moto_reset(request: web.Request) -> web.Response:
    await request.app[RESET]()
    return web.json_response({"status": "ok"})


def mount(app: web.Application, wipe: Wipe) -> None:
    app[RESET] = wipe
    app.router.add_post(RESET_PATH, reset)
    app.router.add_post(MOTO_RESET_PATH, moto_reset)
