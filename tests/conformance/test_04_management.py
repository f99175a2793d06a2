"""Content management workflow of the OCI distribution-spec conformance suite.

Mirrors ``conformance/04_management_test.go`` of opencontainers/distribution-spec v1.1.1 (with
``setup.go`` and ``image.go`` of the same release), run with ``OCI_TEST_CONTENT_MANAGEMENT=1``:
an image is pushed under one tag; the tag is deleted (202, or 400 ``UNSUPPORTED`` / 405 where
a registry refuses tag deletion), then the manifest by digest (202, or 404 if deleting the tag
removed it), the tags list shrinks, the blobs are deleted and read back as 404.

The tests run in file order and share state, as the upstream specs do.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conformance.client import SUCCESS, RegistryClient, expect, tag_list
from tests.conformance.content import IMAGE_MANIFEST, TEST_TAG, SuiteContent

pytestmark = pytest.mark.e2e

REPOSITORY = "conformance/management"


@dataclass
class ManagementState:
    tag_count: int = 0
    blob_delete_allowed: bool = True


@pytest.fixture(scope="module")
def state() -> ManagementState:
    return ManagementState()


# Setup


def test_setup_push_config_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_blob(content.configs[3]), SUCCESS)


def test_setup_push_layer_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_blob(content.layer), SUCCESS)


def test_setup_push_tag(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_manifest(TEST_TAG, content.manifests[3], IMAGE_MANIFEST), SUCCESS)


def test_setup_count_tags(client: RegistryClient, state: ManagementState) -> None:
    reply = expect(client.request("GET", client.tags_path()), {200})
    assert isinstance(reply.json(), dict), reply
    state.tag_count = len(tag_list(reply))


# Manifest delete


def test_delete_tag_is_202_unless_refused(client: RegistryClient) -> None:
    reply = expect(client.delete_manifest(TEST_TAG), {202, 400, 405})
    if reply.status == 400:
        codes = reply.error_codes()
        assert codes, reply
        assert codes[0] == "UNSUPPORTED", reply


def test_delete_manifest_by_digest_is_202_unless_gone(
    client: RegistryClient, content: SuiteContent
) -> None:
    expect(client.delete_manifest(content.manifests[3].digest), {202, 404})


def test_get_deleted_manifest_is_404_unless_refused(
    client: RegistryClient, content: SuiteContent
) -> None:
    path = client.manifest_path(content.manifests[3].digest)
    expect(client.request("GET", path), {404, 200})


def test_tags_list_reflects_the_deletion(client: RegistryClient, state: ManagementState) -> None:
    reply = expect(client.request("GET", client.tags_path()), {200})
    assert isinstance(reply.json(), dict), reply
    assert len(tag_list(reply)) < state.tag_count, reply


# Blob delete


def test_delete_blobs_is_202(
    client: RegistryClient, content: SuiteContent, state: ManagementState
) -> None:
    expect(client.delete_blob(content.configs[3].digest), {202, 404, 405})
    reply = expect(client.delete_blob(content.layer.digest), {202, 404, 405})
    state.blob_delete_allowed = reply.status != 405


def test_get_deleted_blob_is_404(
    client: RegistryClient, content: SuiteContent, state: ManagementState
) -> None:
    """Upstream runs this only when the registry allows blob deletion (no 405 above)."""
    if not state.blob_delete_allowed:
        pytest.skip("upstream runs this only when blob deletion is allowed")
    expect(client.request("GET", client.blob_path(content.configs[3].digest)), {404})
