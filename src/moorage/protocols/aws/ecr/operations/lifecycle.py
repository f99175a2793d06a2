"""Lifecycle policies: Put/Get/DeleteLifecyclePolicy, StartLifecyclePolicyPreview,
GetLifecyclePolicyPreview (shared reference §5.5).

Each handler is one ``LifecycleService`` call. A policy is validated before it is stored, with
ECR's ``InvalidParameterException`` texts (``moorage.domain.lifecycle``). A preview starts
``IN_PROGRESS`` and a background job completes it, usually within a second: the
``LifecyclePolicyPreviewComplete`` waiter sees both states. Preview pages are in binary order
of digest, with tokens scoped to the operation and repository (``pagination.py``);
``maxResults`` defaults to 100, as ECR documents; neither it nor ``nextToken`` may come with
``imageIds`` (botocore's model says so; ``InvalidParameterException``, as for DescribeImages).
``summary`` counts every result of the preview, whatever the filter, and has
``transitioningImageTotalCounts`` only when some image transitions (the model: "only present
if at least one image will be transitioned").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moorage.ports.lifecycle import LifecyclePolicyRecord, PreviewResult
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import decode_token, encode_token
from moorage.services.images import ImageId, TagStatus

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry

DEFAULT_PREVIEW_PAGE = 100
# Every image here is in the standard storage class (no archive storage yet).
STANDARD = "STANDARD"


# What GetLifecyclePolicy and DeleteLifecyclePolicy give as lastEvaluatedAt for a policy that
# never ran: AWS always sends the member (clients such as moto-based suites index it), and a
# policy that was never evaluated shows the Unix epoch there, the zero of its timestamp.
NEVER_EVALUATED = datetime(1970, 1, 1, tzinfo=UTC)


def _policy(ctx: ApiContext[Registry], name: str, record: LifecyclePolicyRecord) -> dict[str, Any]:
    return {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "lifecycle_policy_text": record.text,
        "last_evaluated_at": record.last_evaluated_at or NEVER_EVALUATED,
    }


@operation("PutLifecyclePolicy")
async def put_lifecycle_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Set or replace the repository's policy; echoes its text. Raises RepositoryNotFound,
    LifecyclePolicyInvalid."""
    name: str = params["repository_name"]
    record = await ctx.services.lifecycle.put_policy(
        ctx.registry_id, name, params["lifecycle_policy_text"]
    )
    return {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "lifecycle_policy_text": record.text,
    }


@operation("GetLifecyclePolicy")
async def get_lifecycle_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Raises RepositoryNotFound, LifecyclePolicyNotFound."""
    name: str = params["repository_name"]
    return _policy(ctx, name, await ctx.services.lifecycle.get_policy(ctx.registry_id, name))


@operation("DeleteLifecyclePolicy")
async def delete_lifecycle_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Remove the policy and return it. Raises RepositoryNotFound, LifecyclePolicyNotFound."""
    name: str = params["repository_name"]
    return _policy(ctx, name, await ctx.services.lifecycle.delete_policy(ctx.registry_id, name))


@operation("StartLifecyclePolicyPreview")
async def start_lifecycle_policy_preview(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Raises RepositoryNotFound, LifecyclePolicyInvalid, LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress."""
    name: str = params["repository_name"]
    preview = await ctx.services.lifecycle.start_preview(
        ctx.registry_id, name, params.get("lifecycle_policy_text")
    )
    return {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "lifecycle_policy_text": preview.text,
        "status": preview.status,
    }


@operation("GetLifecyclePolicyPreview")
async def get_lifecycle_policy_preview(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Raises RepositoryNotFound, LifecyclePolicyPreviewNotFound, InvalidParameter (a token
    of another listing; ``nextToken`` or ``maxResults`` with ``imageIds``)."""
    name: str = params["repository_name"]
    scope = f"GetLifecyclePolicyPreview:{ctx.registry_id}/{name}"
    cursor = decode_token(scope, params.get("next_token"))
    named = params.get("image_ids")
    tag_status = TagStatus(params.get("filter", {}).get("tag_status", TagStatus.ANY))
    page = await ctx.services.lifecycle.get_preview(
        ctx.registry_id,
        name,
        image_ids=None
        if named is None
        else [ImageId(item.get("image_digest"), item.get("image_tag")) for item in named],
        tagged=tag_status.tagged,
        after=cursor[0] if cursor else None,
        limit=params.get("max_results", DEFAULT_PREVIEW_PAGE if named is None else None),
    )
    preview = page.preview
    return {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "lifecycle_policy_text": preview.text,
        "status": preview.status,
        "next_token": encode_token(scope, None if page.after is None else [page.after]),
        "preview_results": [_result(result) for result in page.results],
        "summary": {
            "expiring_image_total_count": page.expiring,
            "transitioning_image_total_counts": [
                {"target_storage_class": target.value.upper(), "image_total_count": count}
                for target, count in sorted(page.transitioning.items())
            ]
            or None,
        },
    }


def _result(result: PreviewResult) -> dict[str, Any]:
    target = result.target_storage_class
    return {
        "image_tags": list(result.tags),
        "image_digest": result.digest,
        "image_pushed_at": result.pushed_at,
        "action": {
            "type": result.action.value.upper(),
            "target_storage_class": None if target is None else target.value.upper(),
        },
        "applied_rule_priority": result.rule_priority,
        "storage_class": STANDARD,
    }
