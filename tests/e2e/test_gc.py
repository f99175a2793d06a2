"""``moorage gc`` beside a running server: the data folder really shrinks, and ``--dry-run``
deletes nothing."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tests.e2e.client import RegistryClient, digest_of
from tests.e2e.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

MiB = 1 << 20


def disk_usage(path: Path) -> int:
    """Bytes the folder takes on disk, as ``du`` counts them."""
    result = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[0]) * 1024


def test_gc_shrinks_the_data_folder_while_the_server_runs(server: ServerProcess) -> None:
    rng = random.Random(7)
    kept_layer, gone_layers = rng.randbytes(2 * MiB), [rng.randbytes(4 * MiB) for _ in range(2)]
    with RegistryClient(server.url) as client:
        client.push_image("team/app", "kept", b'{"kept": 1}', [kept_layer])
        gone, _ = client.push_image("team/app", "gone", b'{"gone": 1}', gone_layers)
        response = client.request("DELETE", f"/v2/team/app/manifests/{gone}")
        assert response.status_code == 202, response.text

        data_dir = str(server.data_dir)
        before = disk_usage(server.data_dir)
        dry = run_cli("gc", "--dry-run", "--grace-period", "0", "--data-dir", data_dir)
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.startswith("would free 8.0 MiB: 3 blobs, 0 referrers, "), dry.stdout
        assert disk_usage(server.data_dir) >= before, "a dry run deleted something"

        # The default grace period spares blobs used a moment ago.
        spared = run_cli("gc", "--data-dir", data_dir)
        assert spared.returncode == 0, spared.stderr
        assert spared.stdout.startswith("freed 0 B: 0 blobs, 0 referrers, "), spared.stdout

        freed = run_cli("gc", "--grace-period", "0", "--data-dir", data_dir)
        assert freed.returncode == 0, freed.stderr
        assert freed.stdout.startswith("freed 8.0 MiB: 3 blobs, 0 referrers, "), freed.stdout
        # 8 MiB of blobs went; the database's log grew by a few pages for the deletions.
        assert disk_usage(server.data_dir) <= before - 7 * MiB
        for layer in gone_layers:
            response = client.request("HEAD", f"/v2/team/app/blobs/{digest_of(layer)}")
            assert response.status_code == 404
        assert not any(server.data_dir.glob(f"blobs/sha256/*/{digest_of(gone_layers[0])[7:]}"))
        # The server kept serving, and the image that is still referenced pulls whole.
        assert client.manifest("team/app", "kept").status_code == 200
        assert client.blob("team/app", digest_of(kept_layer)) == kept_layer
        assert server.running
