"""The fault storm: rounds of ``kill -9`` at seeded random moments while clients push whole
and chunked blobs, manifests and indexes, delete images, and ``moorage gc`` runs beside the
server; after every restart ``moorage fsck --verify-digests`` must be clean and every write
the server acknowledged must read back whole. On SQLite and on PostgreSQL.

A write counts once it got its 2xx. A delete in flight when the server died may or may not
have happened: its image must then either read back whole or be gone, never half there. At
the end, one collection with no grace period must leave no staging area and no orphan file
(``fsck --after-gc``).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.client import OCI_INDEX, RegistryClient, digest_of, image_index, image_manifest
from tests.e2e.server import ServerProcess, run_cli
from tests.e2e.test_crash_safety import verify_reference
from tests.postgres import create_throwaway_database, drop_database

pytestmark = pytest.mark.e2e

ROUNDS = 6
CLIENTS = 3
SEED = 20261207


@dataclass
class Ledger:
    """What the server acknowledged, shared by the clients."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)  # acknowledged pushes
    maybe_deleted: dict[tuple[str, str], str] = field(default_factory=dict)
    blobs: dict[str, tuple[str, str]] = field(default_factory=dict)  # digest -> (name, sha)
    operations: int = 0
    interrupted: int = 0
    errors: list[str] = field(default_factory=list)


class Interrupted(Exception):
    """The server went away mid-request (it was killed): not the client's failure."""


def _ok(response: requests.Response, *statuses: int) -> requests.Response:
    if response.status_code not in statuses:
        # 404 for an upload session lost with a kill (its staging collected meanwhile) is a
        # client's restart condition, as docker treats it; anything else is a failure.
        if response.status_code == 404 and "BLOB_UPLOAD_UNKNOWN" in response.text:
            raise Interrupted
        raise AssertionError(
            f"{response.request.method} {response.url}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response


def client_loop(
    index: int, url: str, up: threading.Event, stop: threading.Event, ledger: Ledger
) -> None:
    rng = random.Random(SEED + index)
    name = f"storm/c{index}"
    number = 0
    while not stop.is_set():
        if not up.wait(60):
            ledger.errors.append("the server did not come back")
            return
        try:
            with RegistryClient(url, timeout=30) as client:
                while not stop.is_set():
                    number += 1
                    _one_operation(client, rng, name, number, ledger)
                    with ledger.lock:
                        ledger.operations += 1
        except (requests.ConnectionError, Interrupted):
            with ledger.lock:
                ledger.interrupted += 1
        except Exception as exc:
            ledger.errors.append(repr(exc))
            return


def _one_operation(
    client: RegistryClient, rng: random.Random, name: str, number: int, ledger: Ledger
) -> None:
    roll = rng.random()
    with ledger.lock:
        mine = [key for key in ledger.tags if key[0] == name]
    if roll < 0.15 and mine:
        # Delete an image by digest: in doubt until acknowledged.
        key = rng.choice(mine)
        with ledger.lock:
            digest = ledger.tags.pop(key)
            ledger.maybe_deleted[key] = digest
        _ok(client.request("DELETE", f"/v2/{name}/manifests/{digest}"), 202, 404)
        with ledger.lock:
            del ledger.maybe_deleted[key]
        return
    config = json.dumps({"os": "linux", "n": f"{name}-{number}"}).encode()
    layers = [rng.randbytes(rng.randint(4, 128) * 1024) for _ in range(2)]
    client.push_blob(name, config)
    if rng.random() < 0.5:
        client.push_blob(name, layers[0])
    else:
        client.push_blob_chunked(name, layers[0], 32 * 1024)
    client.push_blob_chunked(name, layers[1], 48 * 1024)
    with ledger.lock:
        for blob in (config, *layers):
            ledger.blobs[digest_of(blob)] = (name, digest_of(blob))
    tag = f"t{number}"
    payload = image_manifest(config, layers)
    if roll < 0.7:
        digest = client.put_manifest(name, tag, payload)
    else:
        other = image_manifest(config, layers[:1])
        client.put_manifest(name, digest_of(payload), payload)
        client.put_manifest(name, digest_of(other), other)
        digest = client.put_manifest(name, tag, image_index([payload, other]), OCI_INDEX)
    with ledger.lock:
        ledger.tags[name, tag] = digest


def collector_loop(data_args: list[str], stop: threading.Event, runs: list[int]) -> None:
    """``moorage gc`` beside the server, again and again: the blobs' grace period keeps what
    clients pushed (they read it back); abandoned uploads go after 2 s."""
    while not stop.is_set():
        result = run_cli("gc", "--grace-period", "3600", "--upload-grace-period", "2", *data_args)
        runs.append(result.returncode)
        time.sleep(0.5)


def fsck(data_args: list[str], *flags: str) -> subprocess.CompletedProcess[str]:
    return run_cli("fsck", "--verify-digests", *flags, *data_args)


def verify(url: str, ledger: Ledger) -> None:
    with RegistryClient(url) as client:
        for (name, tag), digest in ledger.tags.items():
            assert verify_reference(client, name, tag) == digest, (name, tag)
        for (name, tag), digest in ledger.maybe_deleted.items():
            response = client.manifest(name, digest)
            if response.status_code != 404:  # the delete did not happen: all of it is there
                assert verify_reference(client, name, digest) == digest, (name, tag)
        for digest, (name, _) in ledger.blobs.items():
            assert digest_of(client.blob(name, digest)) == digest


@pytest.fixture(params=["sqlite", "postgres"])
def data_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    args = ["--data-dir", str(tmp_path / "data")]
    if request.param == "sqlite":
        yield args
        return
    url = asyncio.run(create_throwaway_database())
    try:
        yield [*args, "--database-url", url]
    finally:
        asyncio.run(drop_database(url))


def test_fault_storm_keeps_every_acknowledged_write_and_fsck_clean(
    data_args: list[str], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    extra = ["--create-on-push", "*", *data_args[2:]]
    server = ServerProcess(data_dir=Path(data_args[1]), extra_args=extra).start()
    ledger = Ledger()
    up, stop = threading.Event(), threading.Event()
    up.set()
    gc_runs: list[int] = []
    threads = [
        threading.Thread(target=client_loop, args=(i, server.url, up, stop, ledger))
        for i in range(CLIENTS)
    ]
    threads.append(threading.Thread(target=collector_loop, args=(data_args, stop, gc_runs)))
    for thread in threads:
        thread.start()
    try:
        for round_number in range(ROUNDS):
            time.sleep(rng.uniform(0.5, 2.5))  # a seeded, random moment
            up.clear()
            server.kill()
            server.start()
            checked = fsck(data_args)
            assert checked.returncode == 0, f"round {round_number}: {checked.stdout}"
            assert not ledger.errors, ledger.errors
            up.set()
        time.sleep(1)
    finally:
        stop.set()
        up.set()
        for thread in threads:
            thread.join(120)
    assert not ledger.errors, ledger.errors
    assert ledger.operations > ROUNDS, "the clients did almost nothing"
    assert ledger.interrupted > 0, "no kill hit a request in flight"
    assert gc_runs, "moorage gc never ran"
    assert all(code == 0 for code in gc_runs), gc_runs
    verify(server.url, ledger)
    assert server.stop() == 0, server.log()

    # One collection with no grace period leaves nothing over.
    collected = run_cli("gc", "--grace-period", "0", "--upload-grace-period", "0", *data_args)
    assert collected.returncode == 0, collected.stderr
    checked = fsck(data_args, "--after-gc")
    assert checked.returncode == 0, checked.stdout
    print(
        f"storm: {ROUNDS} kills, {ledger.operations} operations, {ledger.interrupted} "
        f"interrupted, {len(ledger.tags)} tags and {len(ledger.blobs)} blobs read back, "
        f"{len(gc_runs)} collections"
    )
