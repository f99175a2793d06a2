"""The ``oras`` Python SDK against a real server: artifacts pushed and pulled, and the
referrers API (distribution-spec 1.1) for artifacts pushed with a ``subject``.

The SDK (0.2.x) has no ``artifactType`` parameter. It does let the caller choose the config
media type, and image-spec says a referrers listing reports the config media type as the
``artifactType`` when the manifest has none, so that is how these artifacts are typed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import oras.client
import oras.oci
import pytest
import requests

from tests.e2e.client import OCI_INDEX, OCI_MANIFEST, digest_of
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

REPOSITORY = "team/artifacts"
DOC_TYPE = "application/vnd.moorage.test.doc.v1+json"
SBOM_TYPE = "application/vnd.moorage.test.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.moorage.test.signature.v1+json"
LAYER_TYPE = "text/plain"


@pytest.fixture(scope="module")
def registry(module_server: ServerProcess) -> ServerProcess:
    return module_server


@pytest.fixture
def oras_client(registry: ServerProcess) -> Iterator[oras.client.OrasClient]:
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    yield client
    client.session.close()


def push_artifact(
    client: oras.client.OrasClient,
    target: str,
    file: Path,
    artifact_type: str,
    *,
    annotations: dict[str, str] | None = None,
    subject: oras.oci.Subject | None = None,
) -> requests.Response:
    # A config path that does not exist makes the SDK push the empty config "{}" with the
    # media type given after the colon.
    config = f"{file.parent / 'no-config'}:{artifact_type}"
    response: requests.Response = client.push(
        files=[f"{file}:{LAYER_TYPE}"],
        target=target,
        manifest_config=config,
        manifest_annotations=annotations,
        subject=subject,
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    return response


def test_push_and_pull_artifact(
    oras_client: oras.client.OrasClient, registry: ServerProcess, tmp_path: Path
) -> None:
    """An artifact pushed with the SDK pulls back with the same file, types and annotations."""
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"release notes\n" * 1000)
    target = f"{registry.host}/{REPOSITORY}:v1"
    response = push_artifact(oras_client, target, notes, DOC_TYPE, annotations={"kind": "notes"})

    manifest = oras_client.get_manifest(target)
    assert manifest["config"]["mediaType"] == DOC_TYPE
    assert manifest["layers"][0]["mediaType"] == LAYER_TYPE
    assert manifest["annotations"] == {"kind": "notes"}
    raw = requests.get(f"{registry.url}/v2/{REPOSITORY}/manifests/v1", timeout=10)
    assert digest_of(raw.content) == response.headers["Docker-Content-Digest"]

    out = tmp_path / "out"
    [pulled] = oras_client.pull(target=target, outdir=str(out))
    assert Path(pulled) == out / "notes.txt"
    assert Path(pulled).read_bytes() == notes.read_bytes()


def test_referrers_of_a_subject(
    oras_client: oras.client.OrasClient, registry: ServerProcess, tmp_path: Path
) -> None:
    """Artifacts pushed with a ``subject`` are listed by the referrers API, with their
    artifactType and annotations; the artifactType filter is applied and announced."""
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"\x00\x01payload")
    subject_response = push_artifact(
        oras_client, f"{registry.host}/{REPOSITORY}:subject", payload, DOC_TYPE
    )
    subject_digest = subject_response.headers["Docker-Content-Digest"]
    raw_subject = requests.get(
        f"{registry.url}/v2/{REPOSITORY}/manifests/{subject_digest}", timeout=10
    ).content
    subject = oras.oci.Subject(OCI_MANIFEST, subject_digest, len(raw_subject))

    referrers: dict[str, str] = {}
    for artifact_type, tag in ((SBOM_TYPE, "sbom"), (SIGNATURE_TYPE, "sig")):
        file = tmp_path / f"{tag}.json"
        file.write_text(f'{{"about": "{subject_digest}"}}')
        response = push_artifact(
            oras_client,
            f"{registry.host}/{REPOSITORY}:{tag}",
            file,
            artifact_type,
            annotations={"made-by": tag},
            subject=subject,
        )
        assert response.headers["OCI-Subject"] == subject_digest
        referrers[response.headers["Docker-Content-Digest"]] = artifact_type

    url = f"{registry.url}/v2/{REPOSITORY}/referrers/{subject_digest}"
    listing = requests.get(url, timeout=10)
    assert listing.status_code == 200
    assert listing.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in listing.headers
    index = listing.json()
    assert index["mediaType"] == OCI_INDEX
    found = {entry["digest"]: entry for entry in index["manifests"]}
    assert {digest: entry["artifactType"] for digest, entry in found.items()} == referrers
    for digest, entry in found.items():
        assert entry["mediaType"] == OCI_MANIFEST
        assert entry["annotations"]["made-by"] in ("sbom", "sig")
        manifest = requests.get(f"{registry.url}/v2/{REPOSITORY}/manifests/{digest}", timeout=10)
        assert entry["size"] == len(manifest.content)
        assert manifest.json()["subject"]["digest"] == subject_digest

    filtered = requests.get(url, params={"artifactType": SBOM_TYPE}, timeout=10)
    assert filtered.status_code == 200
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    [only] = filtered.json()["manifests"]
    assert referrers[only["digest"]] == SBOM_TYPE
    assert only["artifactType"] == SBOM_TYPE

    none = requests.get(url, params={"artifactType": "application/x-absent"}, timeout=10)
    assert none.headers["OCI-Filters-Applied"] == "artifactType"
    assert none.json()["manifests"] == []
