"""Repository creation templates: Create/Describe/Update/DeleteRepositoryCreationTemplate
(shared reference §8.3).

What a template means is ``domain/creation_templates.py``'s; which repositories get one is
``services/repositories.py``'s. The dispatcher has authorized each operation on the registry
(``*``). UpdateRepositoryCreationTemplate changes what it is given and keeps the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from moorage.domain.creation_templates import AppliedFor, CreationTemplate, normalize_prefix
from moorage.domain.errors import TemplateNotFound
from moorage.domain.models import TagMutability
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import offset_page

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry

DEFAULT_PAGE = 100


def template_output(template: CreationTemplate) -> dict[str, Any]:
    return {
        "prefix": template.prefix,
        "description": template.description,
        "encryption_configuration": {
            "encryption_type": template.encryption_type,
            "kms_key": template.kms_key,
        },
        "resource_tags": [{"key": k, "value": v} for k, v in template.resource_tags.items()],
        "image_tag_mutability": template.image_tag_mutability.value,
        "image_tag_mutability_exclusion_filters": [
            {"filter_type": "WILDCARD", "filter": f} for f in template.mutability_exclusion_filters
        ]
        or None,
        "repository_policy": template.repository_policy,
        "lifecycle_policy": template.lifecycle_policy,
        "applied_for": [a.value for a in template.applied_for],
        "custom_role_arn": template.custom_role_arn,
        "created_at": template.created_at,
        "updated_at": template.updated_at,
    }


def _answer(registry_id: str, template: CreationTemplate) -> dict[str, Any]:
    return {"registry_id": registry_id, "repository_creation_template": template_output(template)}


def _with_params(template: CreationTemplate, params: Mapping[str, Any]) -> CreationTemplate:
    """``template`` with each setting ``params`` carries."""
    changes: dict[str, Any] = {}
    if "description" in params:
        changes["description"] = params["description"]
    if "encryption_configuration" in params:
        encryption = params["encryption_configuration"]
        changes["encryption_type"] = encryption["encryption_type"]
        changes["kms_key"] = encryption.get("kms_key") or None
    if "resource_tags" in params:
        changes["resource_tags"] = {t["key"]: t["value"] for t in params["resource_tags"]}
    if "image_tag_mutability" in params:
        changes["image_tag_mutability"] = TagMutability(params["image_tag_mutability"])
    if "image_tag_mutability_exclusion_filters" in params:
        changes["mutability_exclusion_filters"] = tuple(
            f["filter"] for f in params["image_tag_mutability_exclusion_filters"]
        )
    if "repository_policy" in params:
        changes["repository_policy"] = params["repository_policy"] or None
    if "lifecycle_policy" in params:
        changes["lifecycle_policy"] = params["lifecycle_policy"] or None
    if "applied_for" in params:
        changes["applied_for"] = tuple(AppliedFor(a) for a in params["applied_for"])
    if "custom_role_arn" in params:
        changes["custom_role_arn"] = params["custom_role_arn"] or None
    return replace(template, **changes)


@operation("CreateRepositoryCreationTemplate")
async def create_repository_creation_template(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    template = _with_params(CreationTemplate(params["prefix"], ()), params)
    created = await ctx.services.creation_templates.create(ctx.registry_id, template)
    return {
        "registry_id": ctx.registry_id,
        "repository_creation_template": template_output(created),
    }


@operation("DescribeRepositoryCreationTemplates")
async def describe_repository_creation_templates(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    templates = await ctx.services.creation_templates.describe(
        ctx.registry_id, params.get("prefixes")
    )
    page, next_token = offset_page(
        templates,
        f"DescribeRepositoryCreationTemplates/{ctx.registry_id}",
        params.get("next_token"),
        params.get("max_results") or DEFAULT_PAGE,
    )
    return {
        "registry_id": ctx.registry_id,
        "repository_creation_templates": [template_output(t) for t in page],
        "next_token": next_token,
    }


@operation("UpdateRepositoryCreationTemplate")
async def update_repository_creation_template(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    service = ctx.services.creation_templates
    prefix = normalize_prefix(params["prefix"])
    found = await service.describe(ctx.registry_id, [prefix])
    if not found:
        raise TemplateNotFound(
            f"The repository creation template with prefix '{prefix}' does not exist in the "
            f"registry with id '{ctx.registry_id}'."
        )
    updated = await service.update(ctx.registry_id, _with_params(found[0], params))
    return {
        "registry_id": ctx.registry_id,
        "repository_creation_template": template_output(updated),
    }


@operation("DeleteRepositoryCreationTemplate")
async def delete_repository_creation_template(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    deleted = await ctx.services.creation_templates.delete(ctx.registry_id, params["prefix"])
    return {
        "registry_id": ctx.registry_id,
        "repository_creation_template": template_output(deleted),
    }
