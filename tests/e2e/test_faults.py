"""Faults between registries, injected by a proxy (tests/e2e/fault_proxy.py): a pull-through
cache in front of a CNCF distribution, and replication from deployment A (us-east-1) to a peer
deployment B (eu-west-1). 429 with Retry-After, 5xx, cut connections, flipped bytes, a hidden
index child, and kill -9 of the destination mid-layer and of the source mid-job."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import admin_init, ecr_client
from tests.e2e.distribution import Distribution, installed
from tests.e2e.fault_proxy import Fault, FaultProxy
from tests.e2e.oci_layout import Layout, build_layout
from tests.e2e.server import ServerProcess, run_cli
from tests.e2e.test_skopeo import skopeo, skopeo_installed  # noqa: F401

pytestmark = pytest.mark.e2e

EUROPE = "eu-west-1"
ACCOUNT = "123456789012"
REFRESH = 1.0


@pytest.fixture(scope="module", autouse=True)
def distribution_installed() -> None:
    if not installed():
        pytest.fail("docker-registry is not installed; scripts/test installs it")


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.upstream = Distribution(root / "upstream").start()
        self.upstream_proxy = FaultProxy(self.upstream.url).start()
        a_dir, b_dir = root / "a" / "data", root / "b" / "data"
        self.a_admin = admin_init(a_dir)
        self.b_admin = admin_init(b_dir)
        key = run_cli("replication", "public-key", "--data-dir", str(a_dir)).stdout.strip()
        self.b = ServerProcess(
            data_dir=b_dir,
            emulator=False,
            extra_args=["--region", EUROPE, "--replication-trusted-key", key],
        ).start()
        self.b_proxy = FaultProxy(self.b.url).start()
        self.a = ServerProcess(
            data_dir=a_dir,
            emulator=False,
            extra_args=[
                "--replication-peer",
                f"{EUROPE}={self.b_proxy.url}",
                "--cache-refresh-interval",
                str(REFRESH),
            ],
            env={"MOORAGE_JOB_LEASE_SECONDS": "3"},
        ).start()
        self.a_ecr = ecr_client(self.a.url, self.a_admin)
        self.b_ecr = ecr_client(self.b.url, self.b_admin, region=EUROPE)
        self.a_ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="up", upstreamRegistryUrl=self.upstream_proxy.host
        )

    def stop(self) -> None:
        self.upstream_proxy.stop()
        self.b_proxy.stop()
        self.upstream.stop()
        codes = (self.a.stop(), self.b.stop())
        assert codes == (0, 0), self.a.log() + self.b.log()


def creds(ecr: Any) -> str:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("faults"))
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Layout]:
    root = tmp_path_factory.mktemp("layouts")
    made = {
        name: build_layout(root / name, file_size=64 * 1024, seed=seed)
        for name, seed in (("a", 21), ("b", 22), ("c", 23), ("d", 24))
    }
    made["big"] = build_layout(
        root / "big", architectures=("amd64",), layers_per_image=1, file_size=6 * 1024 * 1024
    )
    return made


def to_upstream(world: World, layout: Layout, reference: str) -> bytes:
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{layout.path}:{layout.tag}",
        f"docker://{world.upstream.host}/{reference}",
    )
    return skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{world.upstream.host}/{reference}"
    ).stdout


def pull(world: World, reference: str, into: Path, *, check: bool = True) -> Any:
    return skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        creds(world.a_ecr),
        f"docker://{world.a.host}/{reference}",
        f"oci:{into}:pulled",
        check=check,
    )


def raw(server: ServerProcess, ecr: Any, reference: str) -> bytes:
    return skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds(ecr),
        f"docker://{server.host}/{reference}",
    ).stdout


def first_layer(layout: Layout) -> str:
    index = json.loads((layout.path / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    top = json.loads((layout.path / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    child = top["manifests"][0]["digest"] if "manifests" in top else digest
    manifest = json.loads((layout.path / "blobs" / "sha256" / child.split(":")[1]).read_text())
    return str(manifest["layers"][0]["digest"])


# -- pull-through cache ------------------------------------------------------------------------


def test_a_busy_or_failing_upstream_serves_the_cached_copy(
    world: World, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    expected = to_upstream(world, layouts["a"], "library/a:v1")
    pull(world, "up/library/a:v1", tmp_path / "first")
    time.sleep(REFRESH + 0.3)
    for status in (429, 503):
        with world.upstream_proxy.fault(
            Fault("status", path="/manifests/", status=status, retry_after=1, times=None)
        ):
            assert raw(world.a, world.a_ecr, "up/library/a:v1") == expected
            time.sleep(REFRESH + 0.3)
    assert world.upstream_proxy.seen("HEAD", "/v2/library/a/manifests/v1")


def test_flipped_or_cut_blob_bytes_are_never_kept(
    world: World, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    expected = to_upstream(world, layouts["b"], "library/b:v1")
    layer = first_layer(layouts["b"])
    for fault in (
        Fault("flip", method="GET", path=f"/blobs/{layer}", after_bytes=1000),
        Fault("cut", method="GET", path=f"/blobs/{layer}", after_bytes=1000),
    ):
        world.upstream_proxy.add(fault)
        failed = pull(world, "up/library/b:v1", tmp_path / f"broken-{fault.kind}", check=False)
        assert failed.returncode != 0
        assert fault.times == 0  # the fault was hit
    # Nothing of the broken fetches was kept: the next pull fetches the layer again, whole.
    pull(world, "up/library/b:v1", tmp_path / "whole")
    assert raw(world.a, world.a_ecr, "up/library/b:v1") == expected
    fetched = world.upstream_proxy.seen("GET", f"/blobs/{layer}")
    assert len(fetched) == 3, fetched


def test_an_index_with_a_hidden_child_is_not_imported(
    world: World, layouts: dict[str, Layout], tmp_path: Path
) -> None:
    expected = to_upstream(world, layouts["c"], "library/c:v1")
    hidden = json.loads(expected)["manifests"][1]["digest"]
    with world.upstream_proxy.fault(Fault("hide", path=f"/manifests/{hidden}", times=None)):
        failed = pull(world, "up/library/c:v1", tmp_path / "hidden", check=False)
        assert failed.returncode != 0
        index = "sha256:" + hashlib.sha256(expected).hexdigest()
        images = world.a_ecr.describe_images(repositoryName="up/library/c")["imageDetails"]
        assert index not in {image["imageDigest"] for image in images}
    pull(world, "up/library/c:v1", tmp_path / "shown")
    assert raw(world.a, world.a_ecr, "up/library/c:v1") == expected


# -- replication to a peer -----------------------------------------------------------------


def replicate_to_b(world: World, name: str) -> None:
    world.a_ecr.create_repository(repositoryName=name)
    world.a_ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [{"destinations": [{"region": EUROPE, "registryId": ACCOUNT}]}]
        }
    )


def push_to_a(world: World, layout: Layout, reference: str) -> None:
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds(world.a_ecr),
        f"oci:{layout.path}:{layout.tag}",
        f"docker://{world.a.host}/{reference}",
    )


def wait_status(world: World, name: str, tag: str, timeout: float = 90.0) -> dict[str, Any]:
    """The tag's image's replication status once every image of the repository (an index
    and its children are pushed, and copied, one by one) is no longer IN_PROGRESS; each
    must then be COMPLETE."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ecr = world.a_ecr
            tagged = ecr.describe_image_replication_status(
                repositoryName=name, imageId={"imageTag": tag}
            )["replicationStatuses"]
            pending = [
                status
                for image in ecr.describe_images(repositoryName=name)["imageDetails"]
                for status in ecr.describe_image_replication_status(
                    repositoryName=name, imageId={"imageDigest": image["imageDigest"]}
                )["replicationStatuses"]
                if status["status"] != "COMPLETE"
            ]
            assert not [p for p in pending if p["status"] == "FAILED"], pending
        except Exception:  # A may be restarting
            tagged, pending = [], [None]
        if tagged and not pending:
            return dict(tagged[0])
        assert time.monotonic() < deadline, (tagged, pending)
        time.sleep(0.3)


def test_429_with_retry_after_and_5xx_are_retried(world: World, layouts: dict[str, Layout]) -> None:
    replicate_to_b(world, "faults/retried")
    world.b_proxy.add(Fault("status", method="PATCH", status=429, retry_after=1, times=2))
    world.b_proxy.add(Fault("status", method="PUT", path="/manifests/", status=503, times=1))
    push_to_a(world, layouts["d"], "faults/retried:v1")
    assert wait_status(world, "faults/retried", "v1")["status"] == "COMPLETE"
    assert raw(world.b, world.b_ecr, "faults/retried:v1") == raw(
        world.a, world.a_ecr, "faults/retried:v1"
    )
    assert len(world.b_proxy.seen("PATCH", "/faults/retried/")) >= 3


def test_a_cut_upload_resumes_where_it_broke(world: World, layouts: dict[str, Layout]) -> None:
    replicate_to_b(world, "faults/resumed")
    world.b_proxy.add(
        Fault("cut", method="PATCH", path="/faults/resumed/blobs/uploads/", after_bytes=1 << 20)
    )
    push_to_a(world, layouts["big"], "faults/resumed:v1")
    assert wait_status(world, "faults/resumed", "v1")["status"] == "COMPLETE"
    assert raw(world.b, world.b_ecr, "faults/resumed:v1") == raw(
        world.a, world.a_ecr, "faults/resumed:v1"
    )
    # The source asked where the upload stood, and went on from there.
    assert world.b_proxy.seen("GET", "/faults/resumed/blobs/uploads/")


def test_the_destination_killed_mid_layer(world: World, layouts: dict[str, Layout]) -> None:
    replicate_to_b(world, "faults/killed")
    slow = world.b_proxy.add(
        Fault("delay", method="PATCH", path="/faults/killed/", seconds=1.5, times=None)
    )
    push_to_a(world, layouts["big"], "faults/killed:v1")
    deadline = time.monotonic() + 30
    while not world.b_proxy.seen("PATCH", "/faults/killed/"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    world.b.kill()
    time.sleep(0.5)
    world.b.start()
    world.b_proxy.clear()
    assert slow not in world.b_proxy.faults
    assert wait_status(world, "faults/killed", "v1")["status"] == "COMPLETE"
    assert raw(world.b, world.b_ecr, "faults/killed:v1") == raw(
        world.a, world.a_ecr, "faults/killed:v1"
    )


def test_the_source_killed_mid_job_finishes_once(world: World, layouts: dict[str, Layout]) -> None:
    replicate_to_b(world, "faults/source")
    world.b_proxy.add(
        Fault("delay", method="PATCH", path="/faults/source/", seconds=1.0, times=None)
    )
    push_to_a(world, layouts["big"], "faults/source:v1")
    deadline = time.monotonic() + 30
    while not world.b_proxy.seen("PATCH", "/faults/source/"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    world.a.kill()
    world.b_proxy.clear()
    world.a.start()
    assert wait_status(world, "faults/source", "v1")["status"] == "COMPLETE"
    assert raw(world.b, world.b_ecr, "faults/source:v1") == raw(
        world.a, world.a_ecr, "faults/source:v1"
    )
    # The push's two jobs (the image, then the index with its tag) are the newest; the one
    # the kill interrupted ran again once its lease expired, and each succeeded once.
    listed = run_cli(
        "jobs", "list", "--kind", "replicate", "--limit", "2", "--data-dir", str(world.a.data_dir)
    ).stdout.splitlines()[1:]
    assert len(listed) == 2, listed
    assert all(line.split()[2] == "succeeded" for line in listed), listed
    assert any(line.split()[3] == "2/5" for line in listed), listed
