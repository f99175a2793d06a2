"""Replication: PutReplicationConfiguration, DescribeRegistry (which carries the
configuration) and DescribeImageReplicationStatus (shared reference §7).

The configuration is the registry's, per region; what it means and ECR's quotas are in
``domain/replication.py``, the copying in ``services/replication.py``. The dispatcher has
authorized the registry-level operations on ``*`` and DescribeImageReplicationStatus on the
repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moorage.domain.replication import (
    ReplicationConfiguration,
    configuration_from_document,
    configuration_to_document,
)
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation
from moorage.services.images import ImageId

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry


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
