"""Images: PutImage, BatchGetImage, BatchDeleteImage, ListImages, DescribeImages,
ListImageReferrers.

Each handler turns the input into one ``ImageService`` call (the same service ``/v2/`` uses)
and presents its result; the rules, and their order, are the service's. Page tokens are
made opaque here (``pagination.py``), scoped to the operation and repository.

Every image is ``ACTIVE``: this registry has no archive storage class yet, so an
``imageStatus`` filter of ``ARCHIVED`` or ``ACTIVATING`` matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from moorage.domain.models import ManifestRecord
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.ecr.operations.scans import findings_summary, image_scan_status
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import decode_token, encode_token
from moorage.services.images import ImageDetail, ImageFailure, ImageId, TagStatus

if TYPE_CHECKING:
    from moorage.app import Registry

DEFAULT_PAGE = 100  # ListImages and DescribeImages without maxResults
DEFAULT_REFERRERS_PAGE = 20  # ListImageReferrers without maxResults
ACTIVE = "ACTIVE"
_NOTHING_ARCHIVED = frozenset({"ARCHIVED", "ACTIVATING"})


@operation("PutImage")
async def put_image(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    stored = await ctx.services.images.put_image(
        ctx.registry_id,
        name,
        params["image_manifest"],
        media_type=params.get("image_manifest_media_type"),
        tag=params.get("image_tag"),
        digest=params.get("image_digest"),
    )
    manifest = stored.manifest
    return {
        "image": {
            "registry_id": ctx.registry_id,
            "repository_name": name,
            "image_id": {"image_digest": manifest.digest, "image_tag": params.get("image_tag")},
            "image_manifest": _text(manifest.payload),
            "image_manifest_media_type": manifest.media_type,
        }
    }


@operation("BatchGetImage")
async def batch_get_image(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    result = await ctx.services.images.batch_get(
        ctx.registry_id,
        name,
        image_ids_of(params["image_ids"]),
        params.get("accepted_media_types"),
    )
    return {
        "images": [
            {
                "registry_id": ctx.registry_id,
                "repository_name": name,
                "image_id": _image_id(found.image_id),
                "image_manifest": _text(found.manifest.payload),
                "image_manifest_media_type": found.manifest.media_type,
            }
            for found in result.images
        ],
        "failures": _failures(result.failures),
    }


@operation("BatchDeleteImage")
async def batch_delete_image(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    result = await ctx.services.images.batch_delete(
        ctx.registry_id, params["repository_name"], image_ids_of(params["image_ids"])
    )
    return {
        "image_ids": [_image_id(deleted) for deleted in result.deleted],
        "failures": _failures(result.failures),
    }


@operation("ListImages")
async def list_images(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    scope = f"ListImages:{ctx.registry_id}/{name}"
    after = decode_token(scope, params.get("next_token"))
    filters = params.get("filter", {})
    if filters.get("image_status") in _NOTHING_ARCHIVED:
        await ctx.services.repositories.get(ctx.registry_id, name)  # still 404 when absent
        return {"image_ids": []}
    page = await ctx.services.images.list_image_ids(
        ctx.registry_id,
        name,
        tag_status=TagStatus(filters.get("tag_status", TagStatus.ANY)),
        after=after,
        limit=params.get("max_results", DEFAULT_PAGE),
    )
    return {
        "image_ids": [_image_id(image_id) for image_id in page.items],
        "next_token": encode_token(scope, page.after),
    }


@operation("DescribeImages")
async def describe_images(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    scope = f"DescribeImages:{ctx.registry_id}/{name}"
    filters = params.get("filter", {})
    named = params.get("image_ids")
    if filters.get("image_status") in _NOTHING_ARCHIVED and named is None:
        await ctx.services.repositories.get(ctx.registry_id, name)
        return {"image_details": []}
    after = decode_token(scope, params.get("next_token"))
    limit = params.get("max_results")
    if named is None and limit is None:
        limit = DEFAULT_PAGE
    page = await ctx.services.images.describe(
        ctx.registry_id,
        name,
        image_ids=None if named is None else image_ids_of(named),
        tag_status=TagStatus(filters.get("tag_status", TagStatus.ANY)),
        after=after,
        limit=limit,
    )
    return {
        "image_details": [_detail(ctx.registry_id, name, detail) for detail in page.items],
        "next_token": encode_token(scope, page.after),
    }


@operation("ListImageReferrers")
async def list_image_referrers(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    subject: str = params["subject_id"]["image_digest"]
    # The token is bound to the subject as well: a cursor means nothing for another one.
    scope = f"ListImageReferrers:{ctx.registry_id}/{name}@{subject}"
    filters = params.get("filter", {})
    if filters.get("artifact_status") in _NOTHING_ARCHIVED:
        await ctx.services.repositories.get(ctx.registry_id, name)
        return {"referrers": []}
    page = await ctx.services.images.list_image_referrers(
        ctx.registry_id,
        name,
        subject,
        artifact_types=filters.get("artifact_types", ()),
        after=decode_token(scope, params.get("next_token")),
        limit=params.get("max_results", DEFAULT_REFERRERS_PAGE),
    )
    return {
        "referrers": [_referrer(record) for record in page.items],
        "next_token": encode_token(scope, page.after),
    }


# -- presentation ------------------------------------------------------------------------------


def image_ids_of(raw: Sequence[Mapping[str, str]]) -> list[ImageId]:
    return [ImageId(item.get("image_digest"), item.get("image_tag")) for item in raw]


def _image_id(image_id: ImageId) -> dict[str, str | None]:
    return {"image_digest": image_id.digest, "image_tag": image_id.tag}


def _failures(failures: Sequence[ImageFailure]) -> list[dict[str, Any]]:
    return [
        {
            "image_id": _image_id(failure.image_id),
            "failure_code": failure.code,
            "failure_reason": failure.reason,
        }
        for failure in failures
    ]


def _text(payload: bytes) -> str:
    # Manifests are JSON, hence UTF-8; one pushed over /v2/ in another encoding of JSON
    # still comes back as text rather than failing the whole call.
    return payload.decode("utf-8", errors="replace")


def _detail(registry_id: str, name: str, detail: ImageDetail) -> dict[str, Any]:
    manifest, scan = detail.manifest, detail.scan
    return {
        "registry_id": registry_id,
        "repository_name": name,
        "image_digest": manifest.digest,
        # ECR leaves imageTags out for an untagged image.
        "image_tags": list(detail.tags) or None,
        "image_size_in_bytes": detail.size,
        "image_pushed_at": manifest.pushed_at,
        "image_manifest_media_type": manifest.media_type,
        "artifact_media_type": manifest.config_media_type,
        "last_recorded_pull_time": manifest.last_pulled_at,
        "subject_manifest_digest": manifest.subject,
        "image_status": ACTIVE,
        "image_scan_status": None if scan is None else image_scan_status(scan),
        "image_scan_findings_summary": None if scan is None else findings_summary(scan),
    }


def _referrer(record: ManifestRecord) -> dict[str, Any]:
    return {
        "digest": record.digest,
        "media_type": record.media_type,
        "artifact_type": record.artifact_type,
        "size": record.size,
        "annotations": dict(record.annotations) or None,
        "artifact_status": ACTIVE,
    }
