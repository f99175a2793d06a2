"""Zero-copy file responses on event loops that have no ``loop.sendfile`` (uvloop).

asyncio's own loop sends files with ``sendfile(2)``; aiohttp's ``FileResponse`` uses it. On
uvloop, ``FileResponse`` falls back to reading the file into memory and writing it to the
socket, which costs a core at about 1 GB/s. :class:`ThreadedSendfile` instead runs
``os.sendfile`` in a worker thread on a duplicate of the connection's descriptor, after the
response headers have left through the transport:

- the handler is the connection's only writer until it returns, so nothing else writes to
  the socket meanwhile; a keep-alive connection's next request waits for the handler;
- the thread works on its own duplicate descriptor, so a connection closed by the loop
  meanwhile can never make the thread write into a descriptor number reused elsewhere;
- the socket stays non-blocking (the loop owns it): on ``EAGAIN`` the thread polls for
  writability, and gives up after :data:`STALL_SECONDS` without progress;
- threads are few and dedicated (not the default executor, which the blob store uses); when
  all are busy, the caller falls back to ``FileResponse``.

TLS connections always use ``FileResponse``: their bytes must pass through the encryption.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

log = logging.getLogger("moorage.oci")

# A client that accepts no byte for this long is given up on.
STALL_SECONDS = 60.0
_MAX_SEND = 1 << 30


def loop_has_sendfile(loop: asyncio.AbstractEventLoop) -> bool:
    """True when the loop implements ``sendfile`` itself (asyncio's selector loops do)."""
    return type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile


class ThreadedSendfile:
    def __init__(self, max_threads: int = 32) -> None:
        self._max_threads = max_threads
        self._executor = ThreadPoolExecutor(max_threads, thread_name_prefix="moorage-sendfile")
        self._active = 0

    def can_send(self, request: web.Request) -> bool:
        """Whether this request can be answered by :meth:`send` now."""
        transport = request.transport
        return (
            self._active < self._max_threads
            and transport is not None
            and transport.get_extra_info("sslcontext") is None
            and transport.get_extra_info("socket") is not None
        )

    async def send(
        self,
        request: web.Request,
        response: web.StreamResponse,
        path: Path,
        offset: int,
        count: int,
    ) -> web.StreamResponse:
        """Send ``count`` bytes of ``path`` from ``offset`` as the body of ``response``
        (whose status and headers are set, Content-Length included).

        When the client goes away mid-body, the connection is aborted and the (partly sent)
        response returned as it is.
        """
        self._active += 1
        try:
            await response.prepare(request)
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            # The headers must be on the wire before the thread writes behind the transport.
            # A transport signals only when its buffer drops below the low-water mark, not
            # when it is empty; headers nearly always leave at once, so this rarely waits.
            while transport.get_write_buffer_size():  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            socket_fd = os.dup(transport.get_extra_info("socket").fileno())
            try:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(
                    self._executor, _send_blocking, socket_fd, path, offset, count
                )
            except OSError as error:
                # Headers are gone already: cutting the connection is the only signal left.
                log.info("blob download to %s ended early: %s", request.remote, error)
                transport.abort()
                return response
            finally:
                os.close(socket_fd)
            await response.write_eof()
            return response
        finally:
            self._active -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _send_blocking(socket_fd: int, path: Path, offset: int, count: int) -> None:
    """Copy ``count`` bytes of the file at ``offset`` to the (non-blocking) socket."""
    file_fd = os.open(path, os.O_RDONLY)
    try:
        poller = select.poll()
        poller.register(socket_fd, select.POLLOUT)
        while count > 0:
            try:
                sent = os.sendfile(socket_fd, file_fd, offset, min(count, _MAX_SEND))
            except BlockingIOError:
                if not poller.poll(STALL_SECONDS * 1000):
                    raise TimeoutError("client accepted no data for too long") from None
                continue
            if sent == 0:
                raise ConnectionResetError("the file ended early or the connection closed")
            offset += sent
            count -= sent
    finally:
        os.close(file_fd)


SENDFILE: web.AppKey[ThreadedSendfile | None] = web.AppKey("moorage.oci.sendfile")


async def sendfile_context(app: web.Application) -> AsyncIterator[None]:
    """An aiohttp cleanup context: a ThreadedSendfile while the app runs on a loop that
    needs one, None on loops with their own sendfile."""
    sender = None if loop_has_sendfile(asyncio.get_running_loop()) else ThreadedSendfile()
    app[SENDFILE] = sender
    yield
    if sender is not None:
        sender.close()
