"""``kill -9`` at the worst moments, then a restart on the same data folder: uploads
resume from their last whole chunk, half-received manifests leave nothing behind,
acknowledged pushes survive, and nothing readable is ever wrong."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import random
import socket
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.client import (
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    digest_of,
    image_index,
    image_manifest,
    request_head,
)
from tests.e2e.conftest import StartServer
from tests.e2e.server import wait_for

pytestmark = pytest.mark.e2e

MiB = 1 << 20


def integrity_check(data_dir: Path) -> str:
    with contextlib.closing(sqlite3.connect(data_dir / "moorage.db")) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def stalled_body(
    data: bytes, send: int, sent: threading.Event, release: threading.Event
) -> Iterator[bytes]:
    """Yield the first ``send`` bytes of ``data``, signal ``sent``, then stall until
    ``release`` and end there: the request never gets the rest of its body."""
    for offset in range(0, send, 256 * 1024):
        yield data[offset : min(offset + 256 * 1024, send)]
    sent.set()
    release.wait(60)


def test_kill_mid_chunk_resumes_from_the_last_whole_chunk(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A chunk cut off by ``kill -9`` does not count: after a restart the upload reports
    the first chunk exactly, takes the second again, and completes intact."""
    server = start_server()
    rng = random.Random(3)
    first, second = rng.randbytes(MiB), rng.randbytes(8 * MiB)
    with RegistryClient(server.url) as client:
        location = client.start_upload("team/app")
        response = client.patch(location, first, 0)
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{len(first) - 1}"
    staged = server.data_dir / "uploads" / location.rsplit("/", 1)[1] / "data"

    sent, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def patch_second_chunk() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        headers = {
            "Content-Length": str(len(second)),
            "Content-Range": f"{len(first)}-{len(first) + len(second) - 1}",
        }
        try:
            connection.request(
                "PATCH",
                location,
                body=stalled_body(second, 5 * MiB, sent, release),
                headers=headers,
            )
            connection.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=patch_second_chunk)
    thread.start()
    try:
        assert sent.wait(30)
        # Part of the second chunk is on disk: the crash lands in the middle of writing it.
        wait_for(lambda: staged.stat().st_size > len(first), what="second chunk bytes on disk")
        server.kill()
    finally:
        release.set()
        thread.join(30)
    assert failures, "the interrupted PATCH must not have been answered"

    server.start()
    with RegistryClient(server.url) as client:
        assert client.upload_range(location) == f"0-{len(first) - 1}"
        response = client.patch(location, second, len(first))
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{len(first) + len(second) - 1}"
        digest = client.complete(response.headers["Location"], first + second)
        assert client.blob("team/app", digest) == first + second


def test_kill_mid_manifest_put_leaves_no_tag(start_server: StartServer) -> None:
    """A manifest PUT killed half-way through its body leaves no tag and no manifest, the
    database passes an integrity check, and the same push then succeeds."""
    server = start_server()
    config, layer = b'{"architecture":"amd64","os":"linux"}', random.Random(4).randbytes(4096)
    payload = image_manifest(config, [layer])
    with RegistryClient(server.url) as client:
        for blob in (config, layer):
            client.push_blob("team/app", blob)

    headers = {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(payload))}
    with socket.create_connection(("127.0.0.1", server.port)) as stalled:
        stalled.sendall(request_head("PUT", "/v2/team/app/manifests/v1", headers))
        stalled.sendall(payload[: len(payload) // 2])
        # One full round trip on another connection lets the server's event loop take in
        # the bytes above before the kill.
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
            assert response.status == 200
        server.kill()
    assert integrity_check(server.data_dir) == "ok"

    server.start()
    with RegistryClient(server.url) as client:
        for reference in ("v1", digest_of(payload)):
            response = client.manifest("team/app", reference)
            assert response.status_code == 404
            assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert client.tags("team/app") == []
        client.put_manifest("team/app", "v1", payload)
        assert client.manifest("team/app", "v1").content == payload


class Progress:
    """Pushes acknowledged by the server (tag -> manifest digest), shared by the pushers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: dict[tuple[str, str], str] = {}
        self.interrupted = 0
        self.errors: list[BaseException] = []

    def record(self, name: str, tag: str, digest: str) -> None:
        with self.lock:
            self.acknowledged[name, tag] = digest

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def wait_for_more(self, pushes: int) -> None:
        """Wait until ``pushes`` more pushes are acknowledged; fail on a pusher's error."""
        target = self.count() + pushes
        wait_for(lambda: self.count() >= target or bool(self.errors), 60, "pushes to land")
        assert not self.errors, self.errors


def pusher(
    index: int,
    url: str,
    up: threading.Event,
    stop: threading.Event,
    progress: Progress,
) -> None:
    """Push images (blobs chunked or whole, manifests, now and then an index) under fresh
    tags until ``stop``. A dropped connection means the server was killed: wait for it to
    be back and go on. Anything else (an error status) is a failure."""
    rng = random.Random(index)
    name = f"team/crash{index}"
    number = 0
    try:
        while not stop.is_set():
            if not up.wait(60):
                raise TimeoutError("the server did not come back")
            try:
                with RegistryClient(url, timeout=30) as client:
                    while not stop.is_set():
                        number += 1
                        tag = f"p{number}"
                        config = json.dumps({"os": "linux", "n": f"{index}-{number}"}).encode()
                        layers = [rng.randbytes(rng.randint(16, 256) * 1024) for _ in range(2)]
                        client.push_blob(name, config)
                        client.push_blob(name, layers[0])
                        client.push_blob_chunked(name, layers[1], 64 * 1024)
                        payload = image_manifest(config, layers)
                        if number % 3:
                            digest = client.put_manifest(name, tag, payload)
                        else:
                            other = image_manifest(config, layers[:1])
                            client.put_manifest(name, digest_of(payload), payload)
                            client.put_manifest(name, digest_of(other), other)
                            index_payload = image_index([payload, other])
                            digest = client.put_manifest(name, tag, index_payload, OCI_INDEX)
                        progress.record(name, tag, digest)
            except requests.ConnectionError:
                with progress.lock:
                    progress.interrupted += 1
    except BaseException as exc:
        progress.errors.append(exc)


def verify_reference(client: RegistryClient, name: str, reference: str) -> str:
    """Fetch a manifest and everything it references, checking every digest; returns the
    manifest's digest."""
    response = client.manifest(name, reference)
    assert response.status_code == 200, (reference, response.text)
    digest = digest_of(response.content)
    assert response.headers["Docker-Content-Digest"] == digest
    document = response.json()
    for child in document.get("manifests", []):
        assert verify_reference(client, name, child["digest"]) == child["digest"]
    for blob in [document["config"], *document["layers"]] if "config" in document else []:
        content = client.blob(name, blob["digest"])
        assert digest_of(content) == blob["digest"]
        assert len(content) == blob["size"]
    return digest


def test_repeated_kills_under_load_never_expose_broken_content(
    start_server: StartServer,
) -> None:
    """Five ``kill -9``/restart cycles while four clients push: every acknowledged tag
    survives, every tag resolves to complete content, the database is intact, and every
    stored blob file hashes to its name."""
    server = start_server()
    up, stop = threading.Event(), threading.Event()
    progress = Progress()
    up.set()
    threads = [
        threading.Thread(target=pusher, args=(i, server.url, up, stop, progress)) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):
            progress.wait_for_more(6)
            up.clear()
            server.kill()
            server.start()
            up.set()
        progress.wait_for_more(4)
    finally:
        stop.set()
        up.set()
        for thread in threads:
            thread.join(60)
    assert not progress.errors, progress.errors
    assert progress.interrupted > 0, "no kill hit a push in flight"

    with RegistryClient(server.url) as client:
        for (name, tag), digest in progress.acknowledged.items():
            assert tag in client.tags(name), (name, tag)
            assert verify_reference(client, name, tag) == digest
        for index in range(4):
            name = f"team/crash{index}"
            for tag in client.tags(name):
                verify_reference(client, name, tag)
    assert server.stop() == 0, server.log()

    assert integrity_check(server.data_dir) == "ok"
    stored = [path for path in (server.data_dir / "blobs").rglob("*") if path.is_file()]
    assert stored
    for path in stored:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
