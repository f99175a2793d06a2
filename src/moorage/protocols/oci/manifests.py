"""Manifest endpoints: ``GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>``."""

from __future__ import annotations

from aiohttp import web

from moorage.domain.errors import InvalidTag, ManifestTooLarge, ManifestUnknown
from moorage.domain.manifests import MAX_MANIFEST_BYTES
from moorage.domain.models import ManifestRecord
from moorage.domain.names import RepositoryName
from moorage.iam.actions import Action
from moorage.protocols.oci import replicas
from moorage.protocols.oci.auth import authorize, requires
from moorage.protocols.oci.context import path_name, registry_id, repository_name, services
from moorage.services.images import Reference


def _headers(manifest: ManifestRecord) -> dict[str, str]:
    return {
        "Content-Type": manifest.media_type,
        "Docker-Content-Digest": str(manifest.digest),
        "ETag": f'"{manifest.digest}"',
    }


def _existing_reference(request: web.Request) -> Reference:
    """The reference of a read or delete: a tag outside the grammar names nothing, so it is
    unknown (404) rather than invalid, as the conformance suite expects."""
    text = request.match_info["reference"]
    try:
        return Reference.parse(text)
    except InvalidTag:
        raise ManifestUnknown(
            "Requested image not found", detail={"reference": text[:128]}
        ) from None


async def _fetch(request: web.Request, *, record_pull: bool) -> ManifestRecord:
    reference = _existing_reference(request)
    regional = services(request)
    name = repository_name(request)
    if regional.cache is not None:
        # A repository a pull-through cache owns: its manifests may come from the upstream.
        cached = await regional.cache.manifest(
            registry_id(request),
            name,
            reference,
            lambda action: authorize(request, action, name),
        )
        if cached is not None:
            return cached
    return await regional.images.get_manifest(
        registry_id(request), name, reference, record_pull=record_pull
    )


@requires(Action.BATCH_GET_IMAGE)
async def get_manifest(request: web.Request) -> web.Response:
    manifest = await _fetch(request, record_pull=True)
    return web.Response(body=manifest.payload, headers=_headers(manifest))


@requires(Action.BATCH_GET_IMAGE)
async def head_manifest(request: web.Request) -> web.Response:
    manifest = await _fetch(request, record_pull=False)
    headers = _headers(manifest)
    headers["Content-Length"] = str(manifest.size)
    return web.Response(headers=headers)


@requires(Action.PUT_IMAGE)
async def put_manifest(request: web.Request) -> web.Response:
    name = RepositoryName(repository_name(request))  # before reading a body for nothing
    reference = Reference.parse(request.match_info["reference"])
    payload = await _read_limited(request, MAX_MANIFEST_BYTES)
    await replicas.ensure_repository(request)
    stored = await services(request).images.put_manifest(
        registry_id(request),
        name,
        reference,
        payload,
        request.headers.get("Content-Type"),
        replica=replicas.replica_of(request),
    )
    digest = str(stored.manifest.digest)
    location = f"/v2/{path_name(request)}/manifests/{digest}"
    headers = {"Location": location, "Docker-Content-Digest": digest}
    if stored.manifest.subject is not None:
        # distribution-spec 1.1: tells the client this registry indexes referrers itself.
        headers["OCI-Subject"] = str(stored.manifest.subject.digest)
    return web.Response(status=201, headers=headers)


@requires(Action.BATCH_DELETE_IMAGE)
async def delete_manifest(request: web.Request) -> web.Response:
    reference = _existing_reference(request)
    await services(request).images.delete(
        registry_id(request),
        repository_name(request),
        reference,
        replica=replicas.replicating(request),
    )
    return web.Response(status=202)


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes without buffering the excess."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ManifestTooLarge(f"manifest is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise ManifestTooLarge(f"manifest is over the {limit}-byte limit")
    return bytes(body)
