"""Push workflow of the OCI distribution-spec conformance suite.

Mirrors ``conformance/02_push_test.go`` of opencontainers/distribution-spec v1.1.1 (with
``setup.go`` and ``image.go`` of the same release), run with ``OCI_TEST_PUSH=1``,
``OCI_AUTOMATIC_CROSSMOUNT=1`` and ``OCI_DELETE_MANIFEST_BEFORE_BLOBS=1``:

- streamed upload: ``POST``, one ``PATCH`` with the whole blob, ``PUT`` with the digest;
- monolithic upload: ``POST`` with ``digest`` and the body, then ``POST`` + ``PUT``;
- chunked upload: an out-of-order chunk and a repeated chunk are refused with 416, the upload
  status ``GET`` answers 204 with ``Location`` and ``Range``, the second chunk and a closing
  ``PUT`` with the digest complete it;
- cross-repository mounts: without ``from`` for an unknown blob (a session), with ``from``
  (201, or 202 and a session), and without ``from`` for a blob the registry can find by
  itself ("automatic content discovery", expected 201 since it is enabled);
- manifest upload under four tags and of an image with no layers; teardown.

The tests run in file order and share state, as the upstream specs do; a check upstream runs
only after a given earlier answer (``RunOnlyIf``) checks whichever answer the server gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conformance.client import SUCCESS, RegistryClient, Reply, expect
from tests.conformance.content import (
    EMPTY_LAYER_TAG,
    IMAGE_MANIFEST,
    NONEXISTENT_MANIFEST,
    ChunkedBlob,
    SuiteContent,
)

pytestmark = pytest.mark.e2e

REPOSITORY = "conformance/push"
# Upstream mounts into a second, fresh repository (OCI_CROSSMOUNT_NAMESPACE).
CROSSMOUNT_REPOSITORY = "conformance/push-crossmount"
OCTET_STREAM = {"Content-Type": "application/octet-stream"}
DELETED_OR_REFUSED = {*SUCCESS, 405}
DELETED_GONE_OR_REFUSED = {*SUCCESS, 404, 405}


@dataclass
class PushState:
    """What one upstream spec hands the next (its ``lastResponse`` and ``prevResponse``)."""

    last: Reply | None = None
    previous: Reply | None = None
    chunked: ChunkedBlob | None = None
    monolithic_post: Reply | None = None
    mount: Reply | None = None
    empty_layer_location: str = ""


@pytest.fixture(scope="module")
def state(content: SuiteContent) -> PushState:
    return PushState(chunked=content.chunked)


def last(state: PushState) -> Reply:
    assert state.last is not None, "the previous step did not answer"
    return state.last


# Blob upload, streamed


def test_streamed_patch_with_blob_is_202(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    session = client.request("POST", client.uploads_path())
    assert session.header("Location"), session
    reply = client.request(
        "PATCH", session.relative_location, headers=OCTET_STREAM, body=content.blob_a.content
    )
    state.last = expect(reply, {202})


def test_streamed_put_with_digest_is_201(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    """Upstream also sets ``Content-Length`` to the blob's size, but sends no body: Go writes
    the length of the body it has, ``0``, and so does this request."""
    reply = client.request(
        "PUT",
        last(state).relative_location,
        params={"digest": content.blob_a.digest},
        headers=OCTET_STREAM,
    )
    expect(reply, {201})
    assert reply.header("Location"), reply


# Blob upload, monolithic


def test_monolithic_get_nonexistent_blob_is_404(
    client: RegistryClient, content: SuiteContent
) -> None:
    expect(client.request("GET", client.blob_path(content.dummy_digest)), {404})


def test_monolithic_post_with_digest_and_blob_is_201_or_202(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    config = content.configs[1]
    reply = client.request(
        "POST",
        client.uploads_path(),
        params={"digest": config.digest},
        headers={**OCTET_STREAM, "Content-Length": config.length},
        body=config.content,
    )
    assert reply.header("Location"), reply
    state.monolithic_post = expect(reply, {201, 202})


def test_monolithic_get_blob_after_post_matches_its_status(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    """200 if the ``POST`` stored the blob (201), 404 if it only opened a session (202)."""
    assert state.monolithic_post is not None
    reply = client.request("GET", client.blob_path(content.configs[1].digest))
    expect(reply, {404} if state.monolithic_post.status == 202 else {200})


def test_monolithic_post_yields_a_session(client: RegistryClient, state: PushState) -> None:
    state.last = expect(client.request("POST", client.uploads_path()), {202})


def test_monolithic_put_blob_is_201(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    config = content.configs[1]
    reply = client.request(
        "PUT",
        last(state).relative_location,
        params={"digest": config.digest},
        headers={**OCTET_STREAM, "Content-Length": config.length},
        body=config.content,
    )
    assert reply.header("Location"), reply
    expect(reply, {201})


def test_monolithic_get_existing_blob_is_200(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.request("GET", client.blob_path(content.configs[1].digest)), {200})


def test_monolithic_put_layer_blob_is_201(client: RegistryClient, content: SuiteContent) -> None:
    session = client.request("POST", client.uploads_path())
    reply = client.request(
        "PUT",
        session.relative_location,
        params={"digest": content.layer.digest},
        headers={**OCTET_STREAM, "Content-Length": content.layer.length},
        body=content.layer.content,
    )
    assert reply.header("Location"), reply
    expect(reply, {201})


def test_monolithic_get_existing_layer_is_200(
    client: RegistryClient, content: SuiteContent
) -> None:
    expect(client.request("GET", client.blob_path(content.layer.digest)), {200})


# Blob upload, chunked


def chunked(state: PushState) -> ChunkedBlob:
    assert state.chunked is not None
    return state.chunked


def test_chunked_out_of_order_chunk_is_416(client: RegistryClient, state: PushState) -> None:
    session = client.request("POST", client.uploads_path(), headers={"Content-Length": "0"})
    assert session.header("Location"), session
    # A registry may announce a minimum chunk size; upstream then grows the blob to fit.
    minimum = int(session.header("OCI-Chunk-Min-Length") or 0)
    if minimum > len(chunked(state).first):
        state.chunked = ChunkedBlob.of_size(minimum * 2 - 2)
    blob = chunked(state)
    reply = client.request(
        "PATCH",
        session.relative_location,
        headers={
            **OCTET_STREAM,
            "Content-Length": str(len(blob.second)),
            "Content-Range": blob.second_range,
        },
        body=blob.second,
    )
    expect(reply, {416})


def test_chunked_first_chunk_is_202_with_range(client: RegistryClient, state: PushState) -> None:
    session = client.request("POST", client.uploads_path(), headers={"Content-Length": "0"})
    assert session.header("Location"), session
    state.previous = session
    blob = chunked(state)
    reply = client.request(
        "PATCH",
        session.relative_location,
        headers={
            **OCTET_STREAM,
            "Content-Length": str(len(blob.first)),
            "Content-Range": blob.first_range,
        },
        body=blob.first,
    )
    expect(reply, {202})
    assert reply.header("Range") == blob.first_range, reply
    state.last = reply


def test_chunked_repeated_chunk_is_416(client: RegistryClient, state: PushState) -> None:
    """The first chunk again, at the upload's first ``Location``: the bytes are already there."""
    assert state.previous is not None
    blob = chunked(state)
    reply = client.request(
        "PATCH",
        state.previous.relative_location,
        headers={
            **OCTET_STREAM,
            "Content-Length": str(len(blob.first)),
            "Content-Range": blob.first_range,
        },
        body=blob.first,
    )
    expect(reply, {416})


def test_chunked_upload_status_is_204_with_range_and_location(
    client: RegistryClient, state: PushState
) -> None:
    assert state.previous is not None
    reply = expect(client.request("GET", state.previous.relative_location), {204})
    assert reply.header("Location"), reply
    assert reply.header("Range") == chunked(state).first_range, reply
    state.last = reply


def test_chunked_second_chunk_is_202(client: RegistryClient, state: PushState) -> None:
    blob = chunked(state)
    reply = client.request(
        "PATCH",
        last(state).relative_location,
        headers={
            **OCTET_STREAM,
            "Content-Length": str(len(blob.second)),
            "Content-Range": blob.second_range,
        },
        body=blob.second,
    )
    expect(reply, {202})
    assert reply.header("Location"), reply
    state.last = reply


def test_chunked_put_with_digest_is_201(client: RegistryClient, state: PushState) -> None:
    reply = client.request(
        "PUT",
        last(state).relative_location,
        params={"digest": chunked(state).whole.digest},
        headers={**OCTET_STREAM, "Content-Length": "0"},
    )
    expect(reply, {201})
    assert reply.header("Location"), reply


# Cross-repository blob mount


def test_mount_without_from_of_unknown_blob_yields_a_session(
    client: RegistryClient, content: SuiteContent
) -> None:
    reply = client.request(
        "POST",
        client.uploads_path(CROSSMOUNT_REPOSITORY),
        params={"mount": content.dummy_digest},
    )
    expect(reply, {202})
    assert reply.header("Location"), reply


def test_mount_from_another_repository_is_201_or_202(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    reply = client.request(
        "POST",
        client.uploads_path(CROSSMOUNT_REPOSITORY),
        params={"mount": content.blob_a.digest, "from": client.name},
    )
    state.mount = expect(reply, {201, 202})


def test_mounted_blob_is_readable_or_mount_yields_a_session(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    """Upstream's two follow-ups, one per answer: after 201 the ``Location`` is the blob in the
    target repository and it can be read; after 202 it is an upload session there."""
    mount = state.mount
    assert mount is not None
    if mount.status == 201:
        blob_path = client.blob_path(content.blob_a.digest, CROSSMOUNT_REPOSITORY)
        assert mount.relative_location == blob_path, mount
        expect(client.request("GET", mount.relative_location), {200})
    else:
        prefix = client.uploads_path(CROSSMOUNT_REPOSITORY)
        assert mount.relative_location.startswith(prefix), mount


def test_automatic_mount_without_from_is_201(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    """Automatic content discovery enabled: the registry finds the blob without ``from``.

    Upstream runs this only when the mount with ``from`` answered 201 (``RunOnlyIf``).
    """
    assert state.mount is not None
    if state.mount.status != 201:
        pytest.skip(f"upstream runs this only after a 201 mount with 'from': {state.mount}")
    reply = client.request(
        "POST",
        client.uploads_path(CROSSMOUNT_REPOSITORY),
        params={"mount": content.blob_a.digest},
    )
    expect(reply, {201})


# Manifest upload


def test_get_nonexistent_manifest_is_404(client: RegistryClient) -> None:
    expect(client.request("GET", client.manifest_path(NONEXISTENT_MANIFEST)), {404})


@pytest.mark.parametrize("tag", ["test0", "test1", "test2", "test3"])
def test_put_manifest_is_201_with_location(
    client: RegistryClient, content: SuiteContent, tag: str
) -> None:
    reply = client.push_manifest(tag, content.manifests[1], IMAGE_MANIFEST)
    assert reply.header("Location"), reply
    expect(reply, {201})


def test_put_manifest_with_no_layers(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    """Upstream only warns when this is refused; when it is accepted (201) it wants a
    ``Location``."""
    reply = client.push_manifest(EMPTY_LAYER_TAG, content.empty_layer_manifest, IMAGE_MANIFEST)
    if reply.status == 201:
        assert reply.header("Location"), reply
        state.empty_layer_location = reply.header("Location")


def test_get_manifest_by_digest_is_200(client: RegistryClient, content: SuiteContent) -> None:
    path = client.manifest_path(content.manifests[1].digest)
    expect(client.request("GET", path, headers={"Accept": IMAGE_MANIFEST}), {200})


# Teardown (manifests before blobs)


def test_teardown_delete_manifests(
    client: RegistryClient, content: SuiteContent, state: PushState
) -> None:
    expect(client.delete_manifest(content.manifests[1].digest), DELETED_OR_REFUSED)
    if state.empty_layer_location:
        digest = content.empty_layer_manifest.digest
        expect(client.delete_manifest(digest), DELETED_OR_REFUSED)


def test_teardown_delete_config_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.delete_blob(content.configs[1].digest), DELETED_GONE_OR_REFUSED)


def test_teardown_delete_layer_blob(client: RegistryClient, content: SuiteContent) -> None:
    expect(client.delete_blob(content.layer.digest), DELETED_GONE_OR_REFUSED)
