"""Content discovery workflow of the OCI distribution-spec conformance suite.

Mirrors ``conformance/03_discovery_test.go`` of opencontainers/distribution-spec v1.1.1 (with
``setup.go`` and ``image.go`` of the same release), run with ``OCI_TEST_CONTENT_DISCOVERY=1``
and ``OCI_DELETE_MANIFEST_BEFORE_BLOBS=1``:

- setup: an image under four tags; then artifacts whose ``subject`` is an image not pushed yet
  (one typed by its config media type, one by ``artifactType`` with the empty JSON config),
  an index artifact about the same subject, the subject itself, two more artifacts, and one
  artifact about a subject that is never pushed; every ``PUT`` of a manifest with a subject
  must answer ``OCI-Subject``;
- tags list, with ``n`` and with ``last``;
- referrers of an unknown digest, of the subject (five, each with its one annotation), with an
  ``artifactType`` filter (two when ``OCI-Filters-Applied`` says the filter was applied, all
  five otherwise), and of the subject that was never pushed (one);
- teardown: manifests (and the tag) first, then blobs.

The tests run in file order and share state, as the upstream specs do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.conformance.client import SUCCESS, RegistryClient, Reply, expect, tag_list
from tests.conformance.content import (
    ANNOTATION_KEY,
    ARTIFACT_TYPE_A,
    EMPTY_JSON_DIGEST,
    IMAGE_INDEX,
    IMAGE_MANIFEST,
    TEST_TAG,
    Blob,
    SuiteContent,
)

pytestmark = pytest.mark.e2e

REPOSITORY = "conformance/discovery"
DELETED_OR_REFUSED = {*SUCCESS, 405}
DELETED_GONE_OR_REFUSED = {*SUCCESS, 404, 405}
TAGS = ["test0", "test1", "test2", "test3"]


@dataclass
class DiscoveryState:
    tags: list[str] = field(default_factory=list)
    tag_count: int = len(TAGS)


@pytest.fixture(scope="module")
def state() -> DiscoveryState:
    return DiscoveryState()


def push_referrer(client: RegistryClient, manifest: Blob, subject: Blob, media_type: str) -> None:
    """``PUT`` by digest; a manifest with a subject is answered with ``OCI-Subject``."""
    reply = expect(client.push_manifest(manifest.digest, manifest, media_type), SUCCESS)
    assert reply.header("OCI-Subject") == subject.digest, reply


def referrers(reply: Reply) -> list[dict[str, object]]:
    expect(reply, {200})
    assert reply.header("Content-Type") == IMAGE_INDEX, reply
    manifests = reply.json().get("manifests")
    return list(manifests or [])


def assert_annotated(descriptors: list[dict[str, object]], content: SuiteContent) -> None:
    """Each descriptor carries exactly the one annotation its manifest has."""
    for descriptor in descriptors:
        annotations = descriptor.get("annotations")
        assert isinstance(annotations, dict), descriptor
        assert len(annotations) == 1, descriptor
        expected = content.annotations.get(str(descriptor["digest"]))
        assert annotations.get(ANNOTATION_KEY) == expected, descriptor


# Setup


def test_setup_push_config_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_blob(content.configs[2]), SUCCESS)


def test_setup_push_layer_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_blob(content.layer), SUCCESS)


def test_setup_push_tags(
    client: RegistryClient, content: SuiteContent, state: DiscoveryState
) -> None:
    for tag in TAGS:
        expect(client.push_manifest(tag, content.manifests[2], IMAGE_MANIFEST), SUCCESS)
    state.tags = tag_list(client.request("GET", client.tags_path()))


def test_setup_referrers_before_their_subject(
    client: RegistryClient, content: SuiteContent
) -> None:
    """Artifacts about an image that is not in the registry yet."""
    assert content.empty_json.digest == EMPTY_JSON_DIGEST
    expect(client.push_blob(content.empty_json), SUCCESS)
    expect(client.push_blob(content.ref_blob_a), SUCCESS)
    subject = content.manifests[4]
    push_referrer(client, content.refs_a_config, subject, IMAGE_MANIFEST)
    push_referrer(client, content.refs_a_layer, subject, IMAGE_MANIFEST)
    push_referrer(client, content.refs_index, subject, IMAGE_INDEX)


def test_setup_push_subject(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_blob(content.configs[4]), SUCCESS)
    expect(client.push_blob(content.layer), SUCCESS)
    expect(client.push_manifest(TEST_TAG, content.manifests[4], IMAGE_MANIFEST), SUCCESS)


def test_setup_referrers_after_their_subject(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.push_blob(content.ref_blob_b), SUCCESS)
    subject = content.manifests[4]
    push_referrer(client, content.refs_b_config, subject, IMAGE_MANIFEST)
    push_referrer(client, content.refs_b_layer, subject, IMAGE_MANIFEST)


def test_setup_referrer_of_missing_subject(client: RegistryClient, content: SuiteContent) -> None:
    push_referrer(client, content.refs_c_layer, content.manifests[3], IMAGE_MANIFEST)


# Listing tags


def test_list_tags_is_200(client: RegistryClient, state: DiscoveryState) -> None:
    reply = expect(client.request("GET", client.tags_path()), {200})
    state.tags = tag_list(reply)
    state.tag_count = len(state.tags)


def test_list_tags_limited_by_n(client: RegistryClient, state: DiscoveryState) -> None:
    count = state.tag_count // 2
    reply = expect(client.request("GET", client.tags_path(), params={"n": str(count)}), {200})
    state.tags = tag_list(reply)
    assert len(state.tags) == count, reply


def test_list_tags_starts_after_last(client: RegistryClient, state: DiscoveryState) -> None:
    """Upstream's check, as written: the second reply must be 200, and the list it asserts on
    is the first page (it never parses the second reply)."""
    count = state.tag_count // 2
    first = client.request("GET", client.tags_path(), params={"n": str(count)})
    state.tags = tag_list(first)
    assert len(state.tags) >= count, first
    params = {"n": str(count), "last": state.tags[count - 1]}
    expect(client.request("GET", client.tags_path(), params=params), {200})
    assert len(state.tags) <= count
    assert state.tags[count - 1] in state.tags


# Listing referrers


def test_referrers_of_unknown_digest_is_empty_200(
    client: RegistryClient, content: SuiteContent
) -> None:
    reply = client.request("GET", client.referrers_path(content.dummy_digest))
    assert referrers(reply) == [], reply


def test_referrers_of_subject_is_200(client: RegistryClient, content: SuiteContent) -> None:
    reply = client.request("GET", client.referrers_path(content.manifests[4].digest))
    descriptors = referrers(reply)
    assert len(descriptors) == 5, reply
    assert descriptors[0]["digest"] != descriptors[1]["digest"], reply
    assert_annotated(descriptors, content)


def test_referrers_filtered_by_artifact_type_is_200(
    client: RegistryClient, content: SuiteContent
) -> None:
    """Filtering is optional: without ``OCI-Filters-Applied`` all five come back (upstream
    only warns then)."""
    path = client.referrers_path(content.manifests[4].digest)
    reply = client.request("GET", path, params={"artifactType": ARTIFACT_TYPE_A})
    descriptors = referrers(reply)
    if reply.header("OCI-Filters-Applied"):
        assert len(descriptors) == 2, reply
        assert reply.header("OCI-Filters-Applied") == "artifactType", reply
    else:
        assert len(descriptors) == 5, reply
    assert_annotated(descriptors, content)


def test_referrers_of_missing_subject_is_200(client: RegistryClient, content: SuiteContent) -> None:
    reply = client.request("GET", client.referrers_path(content.manifests[3].digest))
    descriptors = referrers(reply)
    assert len(descriptors) == 1, reply
    assert descriptors[0]["digest"] == content.refs_c_layer.digest, reply


# Teardown (manifests before blobs)


def test_teardown_delete_manifests_and_tag(client: RegistryClient, content: SuiteContent) -> None:
    references = [
        content.refs_index.digest,
        content.manifests[2].digest,
        content.manifests[4].digest,
        content.refs_a_config.digest,
        content.refs_a_layer.digest,
        TEST_TAG,
        content.refs_b_config.digest,
        content.refs_b_layer.digest,
        content.refs_c_layer.digest,
    ]
    for reference in references:
        expect(client.delete_manifest(reference), DELETED_GONE_OR_REFUSED)


def test_teardown_delete_config_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.delete_blob(content.configs[2].digest), DELETED_OR_REFUSED)


def test_teardown_delete_layer_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.delete_blob(content.layer.digest), DELETED_OR_REFUSED)


def test_teardown_references(client: RegistryClient, content: SuiteContent) -> None:
    """The referrer manifests again (already gone: 404 is fine), then their blobs."""
    for manifest in [
        content.refs_index,
        content.refs_a_config,
        content.refs_a_layer,
        content.manifests[4],
        content.refs_b_config,
        content.refs_b_layer,
    ]:
        expect(client.delete_manifest(manifest.digest), DELETED_GONE_OR_REFUSED)
    for blob in [content.configs[4], content.ref_blob_a, content.ref_blob_b, content.empty_json]:
        expect(client.delete_blob(blob.digest), DELETED_GONE_OR_REFUSED)
