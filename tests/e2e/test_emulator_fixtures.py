"""Emulator mode for test suites written for moto: fixture images and moto's reset call.

Written the way such suites are (boto3 with ``endpoint_url``, images made up in memory with
random layer digests that were never uploaded, ``POST /moto-api/reset`` before and after
every test, as moto's ``mock_aws`` does in server mode), against a real
``moorage serve --emulator``, and the same checks against ``--emulator-strict``, which
answers AWS's errors.
"""

from __future__ import annotations

import hashlib
import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.aws import Credentials, ecr_client
from tests.e2e.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

ANY_KEY = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "0")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def post(server: ServerProcess, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{server.url}{path}", method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get(server: ServerProcess, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def random_digest(rng: random.Random) -> str:
    return "sha256:" + hashlib.sha256(rng.randbytes(16)).hexdigest()


def fixture_manifest(rng: random.Random, layers: int = 3) -> dict[str, Any]:
    """A Docker image manifest whose config and layers were never uploaded, as moto-based
    suites build them."""
    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": rng.randint(100, 1000),
            "digest": random_digest(rng),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": rng.randint(100, 1000),
                "digest": random_digest(rng),
            }
            for _ in range(layers)
        ],
    }


def declared_size(manifest: dict[str, Any]) -> int:
    blobs = {d["digest"]: d["size"] for d in [manifest["config"], *manifest["layers"]]}
    return sum(blobs.values())


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("emulator") / "data"
    process = ServerProcess(data_dir=data_dir, extra_args=["--no-workers"]).start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("strict") / "data"
    process = ServerProcess(
        data_dir=data_dir, extra_args=["--no-workers", "--emulator-strict"]
    ).start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture
def ecr(lenient: ServerProcess) -> Iterator[Any]:
    """moto's server mode: reset before and after every test."""
    assert post(lenient, "/moto-api/reset") == (200, {"status": "ok"})
    yield ecr_client(lenient.url, ANY_KEY)
    assert post(lenient, "/moto-api/reset") == (200, {"status": "ok"})


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return random.Random(request.node.name)


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_moto_reset_wipes_state(lenient: ServerProcess, ecr: Any) -> None:
    ecr.create_repository(repositoryName="left/over")
    assert post(lenient, "/moto-api/reset") == (200, {"status": "ok"})
    assert ecr.describe_repositories()["repositories"] == []
    ecr.create_repository(repositoryName="left/over")  # the name is free again


def test_a_fixture_image_is_stored_with_its_declared_size(ecr: Any, rng: random.Random) -> None:
    ecr.create_repository(repositoryName="fixtures")
    manifest = fixture_manifest(rng)
    text = json.dumps(manifest)
    image = ecr.put_image(repositoryName="fixtures", imageManifest=text, imageTag="v1")["image"]
    # The digest is still the sha256 of the bytes received.
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert image["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    (detail,) = ecr.describe_images(repositoryName="fixtures")["imageDetails"]
    assert detail["imageDigest"] == digest
    assert detail["imageTags"] == ["v1"]
    assert detail["imageSizeInBytes"] == declared_size(manifest)
    assert detail["imageManifestMediaType"] == DOCKER_MANIFEST
    got = ecr.batch_get_image(repositoryName="fixtures", imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageManifest"] == text
    assert ecr.list_images(repositoryName="fixtures")["imageIds"] == [image["imageId"]]


def test_a_digest_that_is_not_the_manifests_is_still_refused(ecr: Any, rng: random.Random) -> None:
    ecr.create_repository(repositoryName="fixtures")
    code, _ = error_of(
        ecr.put_image,
        repositoryName="fixtures",
        imageManifest=json.dumps(fixture_manifest(rng)),
        imageDigest=random_digest(rng),
    )
    assert code == "ImageDigestDoesNotMatchException"


def test_a_manifest_list_of_absent_images_is_stored(ecr: Any, rng: random.Random) -> None:
    """moto's helpers list the config digests of their images as the children."""
    ecr.create_repository(repositoryName="multi")
    children = [fixture_manifest(rng), fixture_manifest(rng)]
    listing = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": child["config"]["mediaType"],
                "digest": child["config"]["digest"],
                "size": child["config"]["size"],
                "platform": {"architecture": arch, "os": "linux"},
            }
            for child, arch in zip(children, ["arm64", "amd64"], strict=True)
        ],
    }
    stored = ecr.put_image(
        repositoryName="multi", imageManifest=json.dumps(listing), imageTag="multiArch"
    )["image"]
    assert stored["imageId"]["imageTag"] == "multiArch"
    (detail,) = ecr.describe_images(repositoryName="multi")["imageDetails"]
    assert detail["imageManifestMediaType"] == DOCKER_LIST


def test_an_absent_blob_answers_as_any_missing_blob(
    lenient: ServerProcess, ecr: Any, rng: random.Random
) -> None:
    ecr.create_repository(repositoryName="fixtures")
    manifest = fixture_manifest(rng)
    ecr.put_image(repositoryName="fixtures", imageManifest=json.dumps(manifest), imageTag="v1")
    layer = manifest["layers"][0]["digest"]
    never = random_digest(rng)
    for digest in (layer, never):
        status, body = get(lenient, f"/v2/fixtures/blobs/{digest}")
        assert status == 404
        assert body["errors"][0]["code"] == "BLOB_UNKNOWN"
    absent = error_of(ecr.get_download_url_for_layer, repositoryName="fixtures", layerDigest=layer)
    unknown = error_of(ecr.get_download_url_for_layer, repositoryName="fixtures", layerDigest=never)
    assert absent[0] == unknown[0] == "LayersNotFoundException"
    checked = ecr.batch_check_layer_availability(
        repositoryName="fixtures", layerDigests=[layer, never]
    )
    assert [layer["layerAvailability"] for layer in checked["layers"]] == ["UNAVAILABLE"] * 2
    # The image itself pulls: its manifest is there.
    status, _ = get(lenient, "/v2/fixtures/manifests/v1")
    assert status == 200


def test_garbage_collection_leaves_fixture_images_alone(
    lenient: ServerProcess, ecr: Any, rng: random.Random
) -> None:
    ecr.create_repository(repositoryName="fixtures")
    manifest = fixture_manifest(rng)
    ecr.put_image(repositoryName="fixtures", imageManifest=json.dumps(manifest), imageTag="v1")
    result = run_cli("gc", "--data-dir", str(lenient.data_dir), "--grace-period", "0")
    assert result.returncode == 0, result.stderr
    (detail,) = ecr.describe_images(repositoryName="fixtures")["imageDetails"]
    assert detail["imageSizeInBytes"] == declared_size(manifest)


def test_strict_mode_answers_aws_errors(strict: ServerProcess, rng: random.Random) -> None:
    assert post(strict, "/moto-api/reset") == (200, {"status": "ok"})
    ecr = ecr_client(strict.url, ANY_KEY)
    ecr.create_repository(repositoryName="fixtures")
    manifest = fixture_manifest(rng)
    code, message = error_of(
        ecr.put_image, repositoryName="fixtures", imageManifest=json.dumps(manifest)
    )
    assert code == "LayersNotFoundException"
    assert manifest["config"]["digest"] in message
    assert ecr.describe_images(repositoryName="fixtures")["imageDetails"] == []


def test_a_manifest_without_media_type_gets_awss_message(ecr: Any, rng: random.Random) -> None:
    ecr.create_repository(repositoryName="fixtures")
    manifest = fixture_manifest(rng)
    del manifest["mediaType"]
    code, message = error_of(
        ecr.put_image, repositoryName="fixtures", imageManifest=json.dumps(manifest)
    )
    assert (code, message) == (
        "InvalidParameterException",
        "image manifest mediatype not provided in manifest or parameter",
    )
    stored = ecr.put_image(
        repositoryName="fixtures",
        imageManifest=json.dumps(manifest),
        imageManifestMediaType=DOCKER_MANIFEST,
    )["image"]
    assert stored["imageManifestMediaType"] == DOCKER_MANIFEST


def test_a_fixture_manifest_is_accepted_on_v2_too(
    lenient: ServerProcess, ecr: Any, rng: random.Random
) -> None:
    ecr.create_repository(repositoryName="fixtures")
    manifest = json.dumps(fixture_manifest(rng)).encode()
    request = urllib.request.Request(
        f"{lenient.url}/v2/fixtures/manifests/v2",
        method="PUT",
        data=manifest,
        headers={"Content-Type": DOCKER_MANIFEST},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        digest = response.headers["Docker-Content-Digest"]
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    (detail,) = ecr.describe_images(repositoryName="fixtures")["imageDetails"]
    assert (detail["imageDigest"], detail["imageTags"]) == (digest, ["v2"])
