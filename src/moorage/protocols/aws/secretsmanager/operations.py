"""Secrets Manager's operations: CreateSecret, GetSecretValue, PutSecretValue, DescribeSecret,
ListSecrets, DeleteSecret, RestoreSecret, TagResource, UntagResource (the rest of the model
answers UnsupportedOperationException).

Each handler authorizes its own ``secretsmanager:<Operation>`` on the secret's ARN (the
dispatcher cannot: the ARN comes from the name), as AWS does; ListSecrets on ``*``. The
operations get the region's :class:`~moorage.services.secrets.SecretsService` and nothing
else. Values never reach a log: the dispatcher logs operations, never their input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import offset_page
from moorage.services.secrets import SecretDescription, SecretsService, SecretValue, StoredValue

Context = ApiContext[SecretsService]
DEFAULT_PAGE = 100


async def _authorized_arn(ctx: Context, secret_id: str) -> str:
    arn = await ctx.services.arn_of(ctx.principal.registry_id, secret_id)
    await ctx.authorize(f"secretsmanager:{ctx.operation}", resource_arn=arn)
    return arn


def _value(params: Mapping[str, Any]) -> SecretValue:
    return SecretValue(text=params.get("secret_string"), binary=params.get("secret_binary"))


def _tags(params: Mapping[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag.get("value", "") for tag in params.get("tags") or ()}


def _stored_output(stored: StoredValue) -> dict[str, Any]:
    return {
        "arn": stored.secret.arn,
        "name": stored.secret.name,
        "version_id": stored.version_id,
        "version_stages": list(stored.stages),
    }


def _description_output(described: SecretDescription, *, versions_key: str) -> dict[str, Any]:
    secret = described.secret
    return {
        "arn": secret.arn,
        "name": secret.name,
        "description": secret.description,
        "kms_key_id": secret.kms_key_id,
        "last_changed_date": secret.changed_at,
        "last_accessed_date": secret.accessed_at,
        "deleted_date": secret.deleted_at,
        "tags": [{"key": k, "value": v} for k, v in described.tags.items()] or None,
        versions_key: {k: list(v) for k, v in described.versions.items()} or None,
        "created_date": secret.created_at,
    }


@operation("CreateSecret")
async def create_secret(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["name"]
    registry_id = ctx.principal.registry_id
    await ctx.authorize(
        "secretsmanager:CreateSecret",
        resource_arn=ctx.services.arn_for(registry_id, name),
        request_tags=_tags(params) or None,
    )
    has_value = "secret_string" in params or "secret_binary" in params
    created = await ctx.services.create(
        registry_id,
        name,
        value=_value(params) if has_value else None,
        description=params.get("description"),
        kms_key_id=params.get("kms_key_id"),
        tags=_tags(params),
        client_token=params.get("client_request_token"),
    )
    if isinstance(created, StoredValue):
        answer = _stored_output(created)
        del answer["version_stages"]
        return answer
    return {"arn": created.arn, "name": created.name}


@operation("GetSecretValue")
async def get_secret_value(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    secret_id: str = params["secret_id"]
    await _authorized_arn(ctx, secret_id)
    stored = await ctx.services.get_value(
        ctx.principal.registry_id,
        secret_id,
        version_id=params.get("version_id"),
        stage=params.get("version_stage"),
    )
    return {
        **_stored_output(stored),
        "secret_string": stored.value.text,
        "secret_binary": stored.value.binary,
        "created_date": stored.created_at,
    }


@operation("PutSecretValue")
async def put_secret_value(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    secret_id: str = params["secret_id"]
    await _authorized_arn(ctx, secret_id)
    stored = await ctx.services.put_value(
        ctx.principal.registry_id,
        secret_id,
        _value(params),
        client_token=params.get("client_request_token"),
        stages=params.get("version_stages"),
    )
    return _stored_output(stored)


@operation("DescribeSecret")
async def describe_secret(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    secret_id: str = params["secret_id"]
    await _authorized_arn(ctx, secret_id)
    described = await ctx.services.describe(ctx.principal.registry_id, secret_id)
    return _description_output(described, versions_key="version_ids_to_stages")


@operation("ListSecrets")
async def list_secrets(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    await ctx.authorize("secretsmanager:ListSecrets", resource_arn="*")
    filters = [(f["key"], list(f.get("values") or ())) for f in params.get("filters") or ()]
    found = await ctx.services.list_secrets(
        ctx.principal.registry_id,
        include_planned_deletion=bool(params.get("include_planned_deletion")),
        filters=filters,
        sort_by=params.get("sort_by") or "created-date",
        descending=(params.get("sort_order") or "desc") == "desc",
    )
    page, next_token = offset_page(
        found,
        f"ListSecrets/{ctx.principal.registry_id}/{ctx.region}",
        params.get("next_token"),
        params.get("max_results") or DEFAULT_PAGE,
    )
    return {
        "secret_list": [
            _description_output(d, versions_key="secret_versions_to_stages") for d in page
        ],
        "next_token": next_token,
    }


@operation("DeleteSecret")
async def delete_secret(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    secret_id: str = params["secret_id"]
    await _authorized_arn(ctx, secret_id)
    record, when = await ctx.services.delete(
        ctx.principal.registry_id,
        secret_id,
        recovery_window_days=params.get("recovery_window_in_days"),
        force=bool(params.get("force_delete_without_recovery")),
    )
    return {"arn": record.arn, "name": record.name, "deletion_date": when}


@operation("RestoreSecret")
async def restore_secret(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    secret_id: str = params["secret_id"]
    await _authorized_arn(ctx, secret_id)
    record = await ctx.services.restore(ctx.principal.registry_id, secret_id)
    return {"arn": record.arn, "name": record.name}


@operation("TagResource")
async def tag_resource(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    secret_id: str = params["secret_id"]
    arn = await ctx.services.arn_of(ctx.principal.registry_id, secret_id)
    tags = _tags(params)
    await ctx.authorize(
        "secretsmanager:TagResource", resource_arn=arn, request_tags=tags, tag_keys=tuple(tags)
    )
    await ctx.services.tag(ctx.principal.registry_id, secret_id, tags)
    return {}


@operation("UntagResource")
async def untag_resource(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    secret_id: str = params["secret_id"]
    keys = list(params["tag_keys"])
    arn = await ctx.services.arn_of(ctx.principal.registry_id, secret_id)
    await ctx.authorize("secretsmanager:UntagResource", resource_arn=arn, tag_keys=tuple(keys))
    await ctx.services.untag(ctx.principal.registry_id, secret_id, keys)
    return {}
