"""Upload endpoints: ``POST /v2/<name>/blobs/uploads/`` and ``PATCH|PUT|GET|DELETE
/v2/<name>/blobs/uploads/<id>`` (monolithic, chunked and resumable pushes, and mounts)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    AccessDenied,
    InvalidDigest,
    RangeInvalid,
    Unauthenticated,
    UploadUnknown,
)
from moorage.domain.models import BlobRecord, UploadSession
from moorage.iam.actions import Action
from moorage.protocols.oci import replicas
from moorage.protocols.oci.auth import authorize, requires
from moorage.protocols.oci.context import path_name, registry_id, repository_name, services
from moorage.protocols.oci.errors import response_for
from moorage.protocols.oci.ranges import parse_chunk_range, upload_range

# How many repositories holding a blob a mount without ``from`` considers as its source.
MOUNT_CANDIDATES = 20


def _client(request: web.Request) -> str | None:
    """The client's address, for its share of upload slots (services/write_slots.py).
    TODO(#14): behind a load balancer this is the balancer's; take the trusted proxy's
    forwarded address instead."""
    return request.remote


def _body(request: web.Request) -> AsyncIterator[bytes]:
    # Whatever has arrived, without joining it into fixed-size pieces first (a copy); the
    # blob store batches the pieces into large writes itself.
    return request.content.iter_any()


def _has_body(request: web.Request) -> bool:
    return request.body_exists and request.content_length != 0


def _upload_id(request: web.Request) -> str:
    text = request.match_info["upload_id"]
    try:
        return str(uuid.UUID(text, version=4)) if len(text) == 36 else _unknown(text)
    except ValueError:
        return _unknown(text)


def _unknown(text: str) -> str:
    raise UploadUnknown(f"upload {text[:64]!r} is unknown")


def _session_headers(request: web.Request, session: UploadSession) -> dict[str, str]:
    return {
        "Location": f"/v2/{path_name(request)}/blobs/uploads/{session.id}",
        "Range": upload_range(session.size),
        "Docker-Upload-UUID": session.id,
    }


def _created(request: web.Request, blob: BlobRecord) -> web.Response:
    digest = str(blob.digest)
    location = f"/v2/{path_name(request)}/blobs/{digest}"
    return web.Response(status=201, headers={"Location": location, "Docker-Content-Digest": digest})


def _digest_param(request: web.Request) -> Digest:
    text = request.query.get("digest")
    if not text:
        raise InvalidDigest("the digest query parameter is required to complete an upload")
    return Digest.parse(text)


@requires(Action.INITIATE_LAYER_UPLOAD)
async def start_upload(request: web.Request) -> web.Response:
    name = repository_name(request)
    registry = registry_id(request)
    await replicas.ensure_repository(request)
    upload_service = services(request).uploads
    mount = request.query.get("mount")
    if mount is not None:
        blob = await _try_mount(request, mount, request.query.get("from"))
        if blob is not None:
            return _created(request, blob)
        # Not mountable: fall back to a fresh upload session (202), as the spec allows.
    elif "digest" in request.query:
        digest = _digest_param(request)
        blob = await upload_service.upload(
            registry,
            name,
            digest,
            _body(request),
            length=request.content_length,
            client=_client(request),
        )
        return _created(request, blob)
    session = await upload_service.start(registry, name)
    return web.Response(status=202, headers=_session_headers(request, session))


async def _try_mount(request: web.Request, mount: str, source: str | None) -> BlobRecord | None:
    """Mount from ``source``, or without it from any repository the caller may read.

    Mounting reads the source repository, so the caller must be allowed to pull from it.
    A source the caller may not read is passed over silently (the client then uploads),
    so that a mount never reveals whether or where a blob exists.
    """
    try:
        digest = Digest.parse(mount)
    except InvalidDigest:
        return None
    upload_service = services(request).uploads
    registry = registry_id(request)
    if source is not None:
        candidates = [source]
    else:
        candidates = await upload_service.mount_sources(registry, digest, MOUNT_CANDIDATES)
    for candidate in candidates:
        try:
            await authorize(request, Action.GET_DOWNLOAD_URL_FOR_LAYER, candidate)
        except (AccessDenied, Unauthenticated):
            continue
        blob = await upload_service.mount(registry, repository_name(request), digest, candidate)
        if blob is not None:
            return blob
    return None


@requires(Action.UPLOAD_LAYER_PART)
async def upload_chunk(request: web.Request) -> web.Response:
    name = repository_name(request)
    upload_id = _upload_id(request)
    upload_service = services(request).uploads
    try:
        session = await upload_service.append(
            registry_id(request),
            name,
            upload_id,
            _body(request),
            chunk_range=parse_chunk_range(request.headers.get("Content-Range")),
            length=request.content_length,
            client=_client(request),
        )
    except RangeInvalid as exc:
        return await _range_invalid(request, exc)
    return web.Response(status=202, headers=_session_headers(request, session))


@requires(Action.COMPLETE_LAYER_UPLOAD)
async def complete_upload(request: web.Request) -> web.Response:
    name = repository_name(request)
    upload_id = _upload_id(request)
    digest = _digest_param(request)
    has_body = _has_body(request)
    try:
        blob = await services(request).uploads.complete(
            registry_id(request),
            name,
            upload_id,
            digest,
            _body(request) if has_body else None,
            chunk_range=parse_chunk_range(request.headers.get("Content-Range"))
            if has_body
            else None,
            length=request.content_length if has_body else None,
            client=_client(request),
        )
    except RangeInvalid as exc:
        return await _range_invalid(request, exc)
    return _created(request, blob)


@requires(Action.UPLOAD_LAYER_PART)
async def upload_status(request: web.Request) -> web.Response:
    name = repository_name(request)
    session = await services(request).uploads.status(
        registry_id(request), name, _upload_id(request)
    )
    return web.Response(status=204, headers=_session_headers(request, session))


@requires(Action.UPLOAD_LAYER_PART)
async def cancel_upload(request: web.Request) -> web.Response:
    await services(request).uploads.cancel(
        registry_id(request), repository_name(request), _upload_id(request)
    )
    return web.Response(status=204)


async def _range_invalid(request: web.Request, exc: RangeInvalid) -> web.Response:
    """416 with the upload's real extent, so the client can resume from the right byte."""
    headers = {
        "Location": f"/v2/{path_name(request)}/blobs/uploads/{request.match_info['upload_id']}",
        "Range": upload_range(exc.size),
    }
    return response_for(exc, headers)
