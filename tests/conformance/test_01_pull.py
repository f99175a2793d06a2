"""Pull workflow of the OCI distribution-spec conformance suite.

Mirrors ``conformance/01_pull_test.go`` of opencontainers/distribution-spec v1.1.1 (with
``setup.go`` and ``image.go`` of the same release), run with ``OCI_TEST_PULL=1`` and
``OCI_DELETE_MANIFEST_BEFORE_BLOBS=1``: the setup pushes two configs, a layer and two
manifests (one by tag, one by digest); the checks pull them back with ``HEAD`` and ``GET``,
ask for things that do not exist, and the teardown deletes manifests, then blobs.

The tests run in file order and share state, as the upstream specs do.
"""

from __future__ import annotations

import pytest

from tests.conformance.client import SUCCESS, RegistryClient, expect
from tests.conformance.content import (
    ERROR_CODES,
    IMAGE_MANIFEST,
    NONEXISTENT_MANIFEST,
    TEST_TAG,
    SuiteContent,
)

pytestmark = pytest.mark.e2e

REPOSITORY = "conformance/pull"
ACCEPT_MANIFEST = {"Accept": IMAGE_MANIFEST}
DELETED_OR_REFUSED = {*SUCCESS, 405}
DELETED_GONE_OR_REFUSED = {*SUCCESS, 404, 405}


# Setup


@pytest.mark.parametrize("index", [0, 1])
def test_setup_push_config_blob(client: RegistryClient, content: SuiteContent, index: int) -> None:
    expect(client.push_blob(content.configs[index]), SUCCESS)


def test_setup_push_layer_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_blob(content.layer), SUCCESS)


def test_setup_push_manifest_by_tag(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_manifest(TEST_TAG, content.manifests[0], IMAGE_MANIFEST), SUCCESS)


def test_setup_push_manifest_by_digest(client: RegistryClient, content: SuiteContent) -> None:
    manifest = content.manifests[1]
    expect(client.push_manifest(manifest.digest, manifest, IMAGE_MANIFEST), SUCCESS)


# Pull blobs


def test_head_nonexistent_blob_is_404(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.request("HEAD", client.blob_path(content.dummy_digest)), {404})


def test_head_existing_blob_is_200(client: RegistryClient, content: SuiteContent) -> None:
    config = content.configs[0]
    reply = expect(client.request("HEAD", client.blob_path(config.digest)), {200})
    if digest := reply.header("Docker-Content-Digest"):
        assert digest == config.digest, reply


def test_get_nonexistent_blob_is_404(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.request("GET", client.blob_path(content.dummy_digest)), {404})


def test_get_existing_blob_is_200(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.request("GET", client.blob_path(content.configs[0].digest)), {200})


# Pull manifests


def test_head_nonexistent_manifest_is_404(client: RegistryClient) -> None:
    expect(client.request("HEAD", client.manifest_path(NONEXISTENT_MANIFEST)), {404})


@pytest.mark.parametrize("index", [0, 1])
def test_head_manifest_by_digest_is_200(
    client: RegistryClient, content: SuiteContent, index: int
) -> None:
    manifest = content.manifests[index]
    path = client.manifest_path(manifest.digest)
    reply = expect(client.request("HEAD", path, headers=ACCEPT_MANIFEST), {200})
    if digest := reply.header("Docker-Content-Digest"):
        assert digest == manifest.digest, reply


def test_head_manifest_by_tag_is_200(client: RegistryClient, content: SuiteContent) -> None:
    path = client.manifest_path(TEST_TAG)
    reply = expect(client.request("HEAD", path, headers=ACCEPT_MANIFEST), {200})
    if digest := reply.header("Docker-Content-Digest"):
        assert digest == content.manifests[0].digest, reply


def test_get_nonexistent_manifest_is_404(client: RegistryClient) -> None:
    expect(client.request("GET", client.manifest_path(NONEXISTENT_MANIFEST)), {404})


@pytest.mark.parametrize("index", [0, 1])
def test_get_manifest_by_digest_is_200(
    client: RegistryClient, content: SuiteContent, index: int
) -> None:
    path = client.manifest_path(content.manifests[index].digest)
    expect(client.request("GET", path, headers=ACCEPT_MANIFEST), {200})


def test_get_manifest_by_tag_is_200(client: RegistryClient) -> None:
    expect(client.request("GET", client.manifest_path(TEST_TAG), headers=ACCEPT_MANIFEST), {200})


# Error codes


def test_error_body_is_oci_json(client: RegistryClient) -> None:
    """A malformed digest reference: 400 with a registered error code, or 404.

    Upstream sets a Content-Type and the body ``blablabla`` on this ``GET``; its client (resty)
    drops bodies on ``GET``, so only the header goes out here too.
    """
    path = client.manifest_path("sha256:totallywrong")
    reply = client.request("GET", path, headers={"Content-Type": IMAGE_MANIFEST})
    expect(reply, {400, 404})
    if reply.status == 400:
        codes = reply.error_codes()
        assert codes, reply
        assert codes[0] in ERROR_CODES, reply


# Teardown (manifests before blobs)


@pytest.mark.parametrize("index", [0, 1])
def test_teardown_delete_manifest(
    client: RegistryClient, content: SuiteContent, index: int
) -> None:
    expect(client.delete_manifest(content.manifests[index].digest), DELETED_OR_REFUSED)


@pytest.mark.parametrize("index", [0, 1])
def test_teardown_delete_config_blob(
    client: RegistryClient, content: SuiteContent, index: int
) -> None:
    expect(client.delete_blob(content.configs[index].digest), DELETED_GONE_OR_REFUSED)


def test_teardown_delete_layer_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.delete_blob(content.layer.digest), DELETED_GONE_OR_REFUSED)
