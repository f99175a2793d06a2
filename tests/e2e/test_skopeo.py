"""skopeo against a real server: multi-architecture pushes and pulls, digests, tags,
blob reuse, deletion, and repositories that must exist before a push."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.client import RegistryClient
from tests.e2e.conftest import StartServer
from tests.e2e.oci_layout import Layout, build_layout
from tests.e2e.server import ServerProcess, run_cli
from tests.postgres import create_throwaway_database, drop_database

SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True, scope="module")
def skopeo_installed() -> None:
    # Fail, never skip: a skipped client test would hide that pushes were not proven.
    if not os.access(SKOPEO, os.X_OK):
        pytest.fail("skopeo is not installed; scripts/test installs it (apt-get install skopeo)")


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run skopeo without consulting a signature policy."""
    result = subprocess.run(
        [SKOPEO, "--insecure-policy", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result


def push(
    layout: Layout, destination: str, *, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    source = f"oci:{layout.path}:{layout.tag}"
    return skopeo("copy", "--all", "--dest-tls-verify=false", source, destination, check=check)


def blob_file(layout_dir: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":")
    return layout_dir / "blobs" / algorithm / hex_digest


def upload_requests(server: ServerProcess) -> list[str]:
    """Access-log lines of requests that send blob bytes (POST, PATCH, PUT on uploads)."""
    pattern = re.compile(r'"(POST|PATCH|PUT) /v2/[^ ]*/blobs/uploads/')
    return [line for line in server.access_log() if pattern.search(line)]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server on the default SQLite metadata, and one on PostgreSQL: same client, same
    checks."""
    arguments = ["--create-on-push", "*"]
    database_url = None
    if request.param == "postgres":
        database_url = asyncio.run(create_throwaway_database())
        arguments += ["--database-url", database_url]
    data_dir = tmp_path_factory.mktemp(f"skopeo-{request.param}") / "data"
    process = ServerProcess(data_dir=data_dir, extra_args=arguments).start()
    yield process
    code = process.stop()
    if database_url is not None:
        asyncio.run(drop_database(database_url))
    assert code == 0, process.log()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return build_layout(tmp_path_factory.mktemp("layout") / "image", file_size=16 * 1024)


@pytest.fixture(scope="module")
def pushed(registry: ServerProcess, layout: Layout) -> str:
    """The layout pushed as ``team/app:latest``; returns the image reference."""
    reference = f"{registry.host}/team/app"
    push(layout, f"docker://{reference}:latest")
    return reference


def test_multi_arch_round_trip_preserves_every_byte(
    pushed: str, layout: Layout, tmp_path: Path
) -> None:
    """``copy --all`` out and back: same index digest, every manifest and blob identical."""
    pulled = tmp_path / "pulled"
    skopeo(
        "copy", "--all", "--src-tls-verify=false", f"docker://{pushed}:latest", f"oci:{pulled}:back"
    )

    [entry] = json.loads((pulled / "index.json").read_text())["manifests"]
    assert entry["digest"] == layout.index_digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "back"
    for digest in (layout.index_digest, *layout.manifest_digests, *layout.blob_digests):
        copied = blob_file(pulled, digest).read_bytes()
        assert copied == blob_file(layout.path, digest).read_bytes(), digest
        assert "sha256:" + hashlib.sha256(copied).hexdigest() == digest


def test_inspect_raw_and_list_tags(pushed: str, layout: Layout) -> None:
    """``inspect --raw`` returns the index bytes exactly; ``list-tags`` shows the tag."""
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{pushed}:latest").stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == layout.index_digest
    assert raw == blob_file(layout.path, layout.index_digest).read_bytes()

    child = layout.manifest_digests[1]
    raw_child = skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{pushed}@{child}"
    ).stdout
    assert raw_child == blob_file(layout.path, child).read_bytes()

    listing = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{pushed}").stdout)
    assert "latest" in listing["Tags"]


def test_copy_by_digest(
    registry: ServerProcess, pushed: str, layout: Layout, tmp_path: Path
) -> None:
    """``name@sha256:...`` works as a source, for the index and for one platform's image."""
    pulled = tmp_path / "by-digest"
    source = f"docker://{pushed}@{layout.index_digest}"
    skopeo("copy", "--all", "--src-tls-verify=false", source, f"oci:{pulled}:pinned")
    [entry] = json.loads((pulled / "index.json").read_text())["manifests"]
    assert entry["digest"] == layout.index_digest

    amd64 = layout.manifest_digests[0]
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{pushed}@{amd64}",
        f"docker://{registry.host}/team/copies:amd64",
    )
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/team/copies:amd64"
    ).stdout
    assert raw == blob_file(layout.path, amd64).read_bytes()


def test_second_push_reuses_blobs(registry: ServerProcess, pushed: str, layout: Layout) -> None:
    """Pushing the same image again sends no blob bytes: every blob is found by HEAD."""
    before = len(upload_requests(registry))
    heads_before = sum('"HEAD /v2/team/app/blobs/' in line for line in registry.access_log())

    push(layout, f"docker://{pushed}:again")

    assert upload_requests(registry)[before:] == []
    heads = sum('"HEAD /v2/team/app/blobs/' in line for line in registry.access_log())
    assert heads - heads_before >= len(layout.blob_digests)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{pushed}:again").stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == layout.index_digest


def test_delete_by_digest(registry: ServerProcess, layout: Layout) -> None:
    """``skopeo delete name@digest`` removes the manifest and the tag pointing at it."""
    reference = f"{registry.host}/team/doomed"
    push(layout, f"docker://{reference}:v1")

    skopeo("delete", "--tls-verify=false", f"docker://{reference}@{layout.index_digest}")

    result = skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{reference}:v1", check=False
    )
    assert result.returncode != 0
    assert b"manifest unknown" in result.stderr
    with RegistryClient(registry.url) as client:
        response = client.manifest("team/doomed", layout.index_digest)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert "v1" not in client.tags("team/doomed")


def test_push_needs_the_repository_without_create_on_push(
    start_server: StartServer, layout: Layout, tmp_path: Path
) -> None:
    """Without ``--create-on-push`` a push to a missing repository fails with NAME_UNKNOWN;
    ``moorage repo create`` on the live server's data folder makes the same push succeed."""
    server = start_server(data_dir=tmp_path / "strict", extra_args=[])
    destination = f"docker://{server.host}/team/app:latest"

    failed = push(layout, destination, check=False)
    assert failed.returncode != 0
    assert b"name unknown" in failed.stderr.lower()

    created = run_cli("repo", "create", "team/app", "--data-dir", str(server.data_dir))
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "team/app"

    push(layout, destination)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", destination).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == layout.index_digest
