"""Layers: BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
CompleteLayerUpload, GetDownloadUrlForLayer.

Uploads are the ``/v2/`` upload sessions (``UploadService``): a session begun here can be
finished there and the other way round. moorage accepts parts of any size, as ``/v2/``
accepts chunks of any size, so ``LayerPartTooSmallException`` is never raised; ``partSize``
is only the size we suggest. ``GetDownloadUrlForLayer`` answers a URL on this server that
works without credentials for an hour (``protocols/downloads.py``), as ECR's presigned S3
URLs do.

BatchCheckLayerAvailability's ``mediaType`` of an available layer: the layer API takes no
media type, and a blob is stored without one, so every available layer is reported with the
type ECR's API reference gives as its example (``LAYER_MEDIA_TYPE``), as ECR's own answers
for API-uploaded layers do (moto's tests expect the field too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from moorage.domain.digests import Digest
from moorage.domain.errors import InvalidDigest, RangeInvalid, SizeMismatch
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.errors import INVALID_PARAMETER, ApiError
from moorage.protocols.aws.operations import operation
from moorage.protocols.downloads import download_url

if TYPE_CHECKING:
    from moorage.app import Registry

# What InitiateLayerUpload suggests: ECR's largest part (10 MiB) keeps requests few; the
# dispatcher's body limit leaves room for the 20 MiB the model allows.
PART_SIZE = 10 * 1024 * 1024
AVAILABLE = "AVAILABLE"
LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
UNAVAILABLE = "UNAVAILABLE"


@operation("BatchCheckLayerAvailability")
async def batch_check_layer_availability(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    digests: dict[str, Digest] = {}
    failures: list[dict[str, str]] = []
    for text in params["layer_digests"]:
        if not text:
            failures.append(
                _layer_failure(text, "MissingLayerDigest", "The layer digest is missing")
            )
            continue
        try:
            digests[text] = Digest.parse(text)
        except InvalidDigest:
            failures.append(
                _layer_failure(
                    text,
                    "InvalidLayerDigest",
                    "Invalid layer digest: it must be sha256:<64 hex> or sha512:<128 hex>",
                )
            )
    found = await ctx.services.blobs.availability(
        ctx.registry_id, params["repository_name"], list(digests.values())
    )
    layers = []
    for text, digest in digests.items():
        blob = found.get(digest)
        layers.append(
            {"layer_digest": text, "layer_availability": UNAVAILABLE}
            if blob is None
            else {
                "layer_digest": text,
                "layer_availability": AVAILABLE,
                "layer_size": blob.size,
                "media_type": LAYER_MEDIA_TYPE,
            }
        )
    return {"layers": layers, "failures": failures}


@operation("InitiateLayerUpload")
async def initiate_layer_upload(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    session = await ctx.services.uploads.start(ctx.registry_id, params["repository_name"])
    return {"upload_id": session.id, "part_size": PART_SIZE}


@operation("UploadLayerPart")
async def upload_layer_part(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    upload_id: str = params["upload_id"]
    part: bytes = params["layer_part_blob"]
    first, last = params["part_first_byte"], params["part_last_byte"]
    try:
        session = await ctx.services.uploads.append(
            ctx.registry_id,
            name,
            upload_id,
            _body(part),
            chunk_range=(first, last),
            length=len(part),
            client=ctx.source_ip,
        )
    except (RangeInvalid, SizeMismatch) as exc:
        # The whole InvalidLayerPartException, which only this handler can fill in.
        received = exc.size if isinstance(exc, RangeInvalid) else None
        if received is None:
            received = (await ctx.services.uploads.status(ctx.registry_id, name, upload_id)).size
        raise ApiError(
            "InvalidLayerPartException",
            f"The part {first}-{last} ({len(part)} bytes) does not continue the upload, "
            f"which has received {received} bytes",
            registry_id=ctx.registry_id,
            repository_name=name,
            upload_id=upload_id,
            # Nothing received yet: there is no last valid byte to name.
            last_valid_byte_received=received - 1 if received > 0 else None,
        ) from None
    return {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "upload_id": upload_id,
        "last_byte_received": session.size - 1,
    }


@operation("CompleteLayerUpload")
async def complete_layer_upload(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    upload_id: str = params["upload_id"]
    layer_digests: list[str] = params["layer_digests"]
    # One upload is one blob: its digest is the one digest there can be.
    if len(layer_digests) != 1:
        raise ApiError(
            INVALID_PARAMETER,
            "Invalid parameter at 'layerDigests' failed to satisfy constraint: "
            "'an upload is one layer: give exactly one digest'",
        )
    blob = await ctx.services.uploads.complete_layer(
        ctx.registry_id, name, upload_id, Digest.parse(layer_digests[0])
    )
    return {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "upload_id": upload_id,
        "layer_digest": blob.digest,
    }


@operation("GetDownloadUrlForLayer")
async def get_download_url_for_layer(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    digest = Digest.parse(params["layer_digest"])
    grant = await ctx.services.layer_downloads.grant(
        ctx.registry_id, params["repository_name"], digest
    )
    return {
        "download_url": download_url(ctx.scheme, ctx.host, grant.token),
        "layer_digest": digest,
    }


def _layer_failure(digest: str, code: str, reason: str) -> dict[str, str]:
    return {"layer_digest": digest, "failure_code": code, "failure_reason": reason}


async def _body(part: bytes) -> AsyncIterator[bytes]:
    yield part
