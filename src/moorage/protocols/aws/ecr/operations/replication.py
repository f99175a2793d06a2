"""Replication: PutReplicationConfiguration, DescribeRegistry (which carries the
configuration), DescribeImageReplicationStatus, and the backfills (Start/Stop
ReplicationBackfill, DescribeReplicationBackfillResults, ListReplicationBackfills; shared
reference §7; ``services/backfill.py``).

The configuration is the registry's, per region; what it means and ECR's quotas are in
``domain/replication.py``, the copying in ``services/replication.py``. The dispatcher has
authorized the registry-level operations on ``*`` and DescribeImageReplicationStatus on the
repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moorage.domain.replication import (
    Destination,
    ReplicationConfiguration,
    configuration_from_document,
    configuration_to_document,
)
from moorage.ports.replication import Backfill
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import decode_token, encode_token
from moorage.services.images import ImageId

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry


DEFAULT_PAGE = 100


def configuration_output(config: ReplicationConfiguration) -> dict[str, Any]:
    return {"rules": configuration_to_document(config)}


@operation("PutReplicationConfiguration")
async def put_replication_configuration(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Replace the configuration and echo it. Raises InvalidParameter past ECR's quotas (10
    rules, 25 distinct destinations) or for a destination that is this registry itself."""
    config = configuration_from_document(params["replication_configuration"]["rules"])
    stored = await ctx.services.replication.put_configuration(ctx.registry_id, config)
    return {"replication_configuration": configuration_output(stored)}


@operation("DescribeRegistry")
async def describe_registry(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    """The registry id and its replication configuration (no rules when none was put)."""
    config = await ctx.services.replication.get_configuration(ctx.registry_id)
    return {
        "registry_id": ctx.registry_id,
        "replication_configuration": configuration_output(config),
    }


@operation("DescribeImageReplicationStatus")
async def describe_image_replication_status(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Each destination the image was sent to, IN_PROGRESS, COMPLETE or FAILED (with a
    failureCode); none for an image pushed while no rule matched. Raises RepositoryNotFound,
    ImageNotFound."""
    name: str = params["repository_name"]
    raw = params["image_id"]
    image_id = ImageId(raw.get("image_digest"), raw.get("image_tag"))
    record, statuses = await ctx.services.replication.statuses(ctx.registry_id, name, image_id)
    return {
        "repository_name": name,
        "image_id": {"image_digest": str(record.digest), "image_tag": image_id.tag},
        "replication_statuses": [
            {
                "region": status.destination.region,
                "registry_id": status.destination.registry_id,
                "status": status.status.value,
                "failure_code": status.failure_code,
            }
            for status in statuses
        ],
    }


# -- backfills ---------------------------------------------------------------------------------


def _summary(backfill: Backfill) -> dict[str, Any]:
    return {
        "replication_backfill_id": backfill.id,
        "destination": {
            "region": backfill.destination.region,
            "registry_id": backfill.destination.registry_id,
        },
        "status": backfill.status,
        "failure_code": backfill.failure_code,
        "progress": {
            "total_replication_count": backfill.total,
            "completed_replication_count": backfill.completed,
            "failed_replication_count": backfill.failed,
            "failure_codes": list(backfill.failure_codes),
        },
        "started_at": backfill.started_at,
        "ended_at": backfill.ended_at,
    }


@operation("StartReplicationBackfill")
async def start_replication_backfill(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Copy the images already there to one destination of the configuration. Raises
    InvalidParameter, ReplicationBackfillInProgress, LimitExceeded."""
    raw = params["destination"]
    backfill = await ctx.services.backfills.start(
        ctx.registry_id, Destination(raw["region"], raw["registry_id"])
    )
    return {
        "replication_backfill_id": backfill.id,
        "registry_id": ctx.registry_id,
        "destination": raw,
        "status": backfill.status,
        "started_at": backfill.started_at,
    }


@operation("StopReplicationBackfill")
async def stop_replication_backfill(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    backfill = await ctx.services.backfills.stop(ctx.registry_id, params["replication_backfill_id"])
    summary = _summary(backfill)
    return {
        "registry_id": ctx.registry_id,
        "replication_backfill_id": backfill.id,
        "destination": summary["destination"],
        "status": backfill.status,
        "started_at": backfill.started_at,
    }


@operation("DescribeReplicationBackfillResults")
async def describe_replication_backfill_results(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    backfill_id: str = params["replication_backfill_id"]
    status = params.get("result_status_filter")
    scope = f"DescribeReplicationBackfillResults/{ctx.registry_id}/{backfill_id}/{status}"
    cursor = decode_token(scope, params.get("next_token"))
    after = int(cursor[0]) if cursor and cursor[0].isdigit() else 0
    limit = params.get("max_results") or DEFAULT_PAGE
    backfill, results = await ctx.services.backfills.results(
        ctx.registry_id, backfill_id, status=status, after=after, limit=limit + 1
    )
    page = results[:limit]
    summary = _summary(backfill)
    return {
        "registry_id": ctx.registry_id,
        "replication_backfill_id": backfill.id,
        "destination": summary["destination"],
        "status": backfill.status,
        "failure_code": backfill.failure_code,
        "progress": summary["progress"],
        "results": [
            {
                "repository_name": r.repository,
                "image_id": {"image_digest": str(r.digest), "image_tag": r.tag},
                "status": r.status,
                "failure_code": r.failure_code,
            }
            for r in page
        ],
        "started_at": backfill.started_at,
        "ended_at": backfill.ended_at,
        "next_token": encode_token(scope, [str(page[-1].seq)]) if len(results) > limit else None,
    }


@operation("ListReplicationBackfills")
async def list_replication_backfills(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    scope = f"ListReplicationBackfills/{ctx.registry_id}"
    cursor = decode_token(scope, params.get("next_token"))
    start = int(cursor[0]) if cursor and cursor[0].isdigit() else 0
    limit = params.get("max_results") or 50
    found = await ctx.services.backfills.list_backfills(ctx.registry_id, start + limit + 1)
    page = found[start : start + limit]
    return {
        "registry_id": ctx.registry_id,
        "backfills": [_summary(b) for b in page],
        "next_token": encode_token(scope, [str(start + limit)])
        if len(found) > start + limit
        else None,
    }
