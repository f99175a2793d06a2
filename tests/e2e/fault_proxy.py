"""A small fault-injecting HTTP proxy on a free loopback port, in front of one server.

It forwards every request as it is (streaming both ways) unless a :class:`Fault` matches it:

    status      answer this status (429 and 503 with ``Retry-After`` when given) instead
    delay       wait this many seconds, then forward
    cut         forward, but cut the connection after ``after_bytes`` of the request body
                (a PATCH dies mid-upload) or of the response body (a GET dies mid-blob)
    flip        forward, and flip one byte of the response body (at ``after_bytes``)
    hide        answer 404 with the distribution error body (a hidden index child)

A fault matches a method (or any) and a substring of the path, ``times`` times (None:
always). ``requests`` records ``METHOD path status`` of everything seen. It runs in a thread
with its own event loop, so that synchronous tests (skopeo, boto3) can drive it.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from tests.e2e.server import free_port

_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


@dataclass
class Fault:
    kind: str  # status | delay | cut | flip | hide
    path: str = ""
    method: str | None = None
    times: int | None = 1
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    after_bytes: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (self.method is None or self.method == method) and self.path in path


class FaultProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.port = free_port()
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    @contextmanager
    def fault(self, fault: Fault) -> Iterator[Fault]:
        self.add(fault)
        try:
            yield fault
        finally:
            with self._lock:
                if fault in self.faults:
                    self.faults.remove(fault)

    def seen(self, method: str | None = None, path: str = "") -> list[str]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.startswith(method + " ")) and path in r
            ]

    # -- the proxy --------------------------------------------------------------------------

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, status: int | str) -> None:
        with self._lock:
            self.requests.append(f"{method} {path} {status}")

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        fault = self._take(request.method, path)
        if fault is not None and fault.kind == "status":
            self._record(request.method, path, fault.status)
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(int(fault.retry_after))
            await request.read()
            return web.Response(status=fault.status, headers=headers, text="injected")
        if fault is not None and fault.kind == "hide":
            self._record(request.method, path, 404)
            await request.read()
            return web.json_response(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
                status=404,
            )
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        body = await request.read()
        if fault is not None and fault.kind == "cut" and request.method in ("PATCH", "PUT", "POST"):
            # The request body reaches the server only in part; the client sees a dead
            # connection.
            self._record(request.method, path, "cut")
            await self._send(request, body[: fault.after_bytes], truncated=True)
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("cut by the fault proxy")
        return await self._relay(request, body, fault)

    async def _send(
        self, request: web.Request, body: bytes, *, truncated: bool = False
    ) -> aiohttp.ClientResponse | None:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        if body or request.method in ("PUT", "PATCH", "POST"):
            headers["Content-Length"] = str(len(body))
        try:
            return await self._session.request(
                request.method,
                f"{self.target}{request.path_qs}",
                headers=headers,
                # A file-like body: aiohttp warns about large bytes objects.
                data=io.BytesIO(body) if body else None,
                allow_redirects=False,
            )
        except aiohttp.ClientError:
            if truncated:
                return None
            raise

    async def _relay(
        self, request: web.Request, body: bytes, fault: Fault | None
    ) -> web.StreamResponse:
        upstream = await self._send(request, body)
        assert upstream is not None
        async with upstream:
            self._record(request.method, request.path_qs, upstream.status)
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            sent = 0
            async for chunk in upstream.content.iter_any():
                data = chunk
                if fault is not None and fault.kind in ("cut", "flip"):
                    start, end = sent, sent + len(chunk)
                    if start <= fault.after_bytes < end:
                        if fault.kind == "cut":
                            await response.write(chunk[: fault.after_bytes - start])
                            if request.transport is not None:
                                request.transport.abort()
                            return response
                        index = fault.after_bytes - start
                        data = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1 :]
                sent += len(chunk)
                await response.write(data)
            await response.write_eof()
            return response
