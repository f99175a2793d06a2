"""Small ECR operations that exercise the protocol layer (not the real ones)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moorage.domain.errors import RegistryError, RepositoryNotFound
from moorage.iam.actions import Action
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.errors import ApiError
from moorage.protocols.aws.operations import operation

CREATED_AT = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)


class Unmapped(RegistryError):
    """A domain exception no table row knows."""


@dataclass
class SampleServices:
    repositories: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    contexts: list[ApiContext[SampleServices]] = field(default_factory=list)


def _record(ctx: ApiContext[SampleServices], params: dict[str, Any]) -> SampleServices:
    ctx.services.calls.append((ctx.operation, params))
    ctx.services.contexts.append(ctx)
    return ctx.services


@operation("CreateRepository")
async def create_repository(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    services = _record(ctx, params)
    tags = params.get("tags", [])
    if tags:
        await ctx.authorize(
            Action.TAG_RESOURCE,
            params["repository_name"],
            request_tags={t["key"]: t["value"] for t in tags},
            tag_keys=tuple(t["key"] for t in tags),
        )
    services.repositories.add(params["repository_name"])
    return {
        "repository": {
            "repository_arn": ctx.repository_arn(params["repository_name"]),
            "registry_id": ctx.registry_id,
            "repository_name": params["repository_name"],
            "created_at": CREATED_AT,
            "image_tag_mutability": params.get("image_tag_mutability", "MUTABLE"),
            "image_scanning_configuration": params.get(
                "image_scanning_configuration", {"scan_on_push": False}
            ),
        }
    }


@operation("DeleteRepository")
async def delete_repository(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    raise RepositoryNotFound(
        f"The repository with name '{params['repository_name']}' does not exist in the "
        f"registry with id '{ctx.registry_id}'"
    )


@operation("DescribeRepositories")
async def describe_repositories(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    services = _record(ctx, params)
    names = params.get("repository_names") or sorted(services.repositories)
    return {
        "repositories": [
            {"repository_name": name, "registry_id": ctx.registry_id, "created_at": CREATED_AT}
            for name in names
        ]
    }


@operation("DescribeImages")
async def describe_images(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    return {
        "image_details": [
            {
                "registry_id": ctx.registry_id,
                "repository_name": params["repository_name"],
                "image_digest": "sha256:" + "ab" * 32,
                "image_tags": ["latest", "v1"],
                "image_size_in_bytes": 5 * 2**30,
                "image_pushed_at": CREATED_AT,
                "image_scan_findings_summary": {
                    "finding_severity_counts": {"CRITICAL": 1, "LOW": 7},
                },
                "last_recorded_pull_time": None,
            }
        ]
    }


@operation("UploadLayerPart")
async def upload_layer_part(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    blob: bytes = params["layer_part_blob"]
    if params["part_first_byte"] != 0:
        raise ApiError(
            "InvalidLayerPartException",
            "The part does not start where the upload ends.",
            registry_id=ctx.registry_id,
            repository_name=params["repository_name"],
            upload_id=params["upload_id"],
            last_valid_byte_received=0,
        )
    return {
        "registry_id": ctx.registry_id,
        "repository_name": params["repository_name"],
        "upload_id": params["upload_id"],
        "last_byte_received": len(blob) - 1,
    }


@operation("GetAuthorizationToken")
async def get_authorization_token(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    return {"authorization_data": []}


@operation("TagResource")
async def tag_resource(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    return {}


@operation("ListImages")
async def list_images(ctx: ApiContext[SampleServices], params: dict[str, Any]) -> Mapping[str, Any]:
    _record(ctx, params)
    raise RuntimeError("a bug in an operation")


@operation("ListImageReferrers")
async def list_image_referrers(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    raise Unmapped("nobody mapped me")


@operation("BatchDeleteImage")
async def batch_delete_image(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    # A key the output shape does not have: a bug the dispatcher turns into a 500.
    return {"image_ids": [], "deleted": True}


@operation("GetLifecyclePolicy")
async def get_lifecycle_policy(
    ctx: ApiContext[SampleServices], params: dict[str, Any]
) -> Mapping[str, Any]:
    _record(ctx, params)
    # An extra member the error's shape does not have: a bug, answered as a 500.
    raise ApiError("LifecyclePolicyNotFoundException", "none", policy="x")
