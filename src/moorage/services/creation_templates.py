"""Repository creation templates: ECR's Create/Describe/Update/DeleteRepositoryCreationTemplate.

What a template means, and which one a new repository gets, is
``domain/creation_templates.py``'s; ``RepositoryService`` applies it when replication, a
pull-through cache or a push creates a repository. Every setting is checked as
CreateRepository, SetRepositoryPolicy and PutLifecyclePolicy check it, so that a template
never creates a repository those operations would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from moorage.domain.creation_templates import (
    MAX_TEMPLATES,
    CreationTemplate,
    normalize_prefix,
)
from moorage.domain.errors import (
    InvalidParameter,
    TemplateAlreadyExists,
    TemplateLimitExceeded,
    TemplateNotFound,
)
from moorage.domain.lifecycle import parse_lifecycle_policy
from moorage.domain.mutability import check_mutability
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.services.repositories import (
    MAX_RESOURCE_TAGS,
    check_encryption,
    check_policy_text,
    check_tags,
    too_many_tags,
)


def check_template(template: CreationTemplate) -> CreationTemplate:
    """The template with its prefix normalized and its filters as stored. Raises
    InvalidParameter (and the errors of the settings it carries)."""
    if not template.applied_for:
        raise InvalidParameter(
            "Invalid parameter at 'appliedFor' failed to satisfy constraint: "
            "'Member must have at least 1 value'"
        )
    check_encryption(template.encryption_type, template.kms_key)
    check_tags(template.resource_tags)
    if len(template.resource_tags) > MAX_RESOURCE_TAGS:
        raise too_many_tags()
    filters = check_mutability(template.image_tag_mutability, template.mutability_exclusion_filters)
    if template.repository_policy:
        check_policy_text(template.repository_policy, "repository")
    if template.lifecycle_policy:
        parse_lifecycle_policy(template.lifecycle_policy)
    return replace(
        template,
        prefix=normalize_prefix(template.prefix),
        applied_for=tuple(dict.fromkeys(template.applied_for)),
        mutability_exclusion_filters=filters,
    )


class CreationTemplateService:
    def __init__(self, metadata: MetadataStore, clock: Clock) -> None:
        self._metadata = metadata
        self._clock = clock

    async def create(self, registry_id: str, template: CreationTemplate) -> CreationTemplate:
        """Raises InvalidParameter (and the settings' own errors), TemplateAlreadyExists,
        TemplateLimitExceeded."""
        template = check_template(template)
        now = self._clock()
        async with self._metadata.transaction() as tx:
            existing = await tx.list_creation_templates(registry_id)
            if any(t.prefix == template.prefix for t in existing):
                raise _already_exists(registry_id, template.prefix)
            if len(existing) >= MAX_TEMPLATES:
                raise TemplateLimitExceeded(
                    f"The registry with id '{registry_id}' has the most repository creation "
                    f"templates it may have ({MAX_TEMPLATES})."
                )
            if not await tx.insert_creation_template(registry_id, template, now):
                raise _already_exists(registry_id, template.prefix)
        return replace(template, created_at=now, updated_at=now)

    async def describe(
        self, registry_id: str, prefixes: Sequence[str] | None
    ) -> list[CreationTemplate]:
        """The registry's templates by prefix, or those of ``prefixes`` that exist (ECR
        answers the others with nothing, not an error)."""
        async with self._metadata.read() as tx:
            templates = await tx.list_creation_templates(registry_id)
        if not prefixes:
            return templates
        wanted = {normalize_prefix(p) for p in prefixes}
        return [t for t in templates if t.prefix in wanted]

    async def update(self, registry_id: str, template: CreationTemplate) -> CreationTemplate:
        """Replace a template's settings. Raises TemplateNotFound, InvalidParameter."""
        template = check_template(template)
        async with self._metadata.transaction() as tx:
            stored = await tx.replace_creation_template(registry_id, template, self._clock())
        if stored is None:
            raise _not_found(registry_id, template.prefix)
        return stored

    async def delete(self, registry_id: str, prefix: str) -> CreationTemplate:
        """Raises TemplateNotFound."""
        prefix = normalize_prefix(prefix)
        async with self._metadata.transaction() as tx:
            template = await tx.delete_creation_template(registry_id, prefix)
        if template is None:
            raise _not_found(registry_id, prefix)
        return template


def _not_found(registry_id: str, prefix: str) -> TemplateNotFound:
    return TemplateNotFound(
        f"The repository creation template with prefix '{prefix}' does not exist in the "
        f"registry with id '{registry_id}'."
    )


def _already_exists(registry_id: str, prefix: str) -> TemplateAlreadyExists:
    return TemplateAlreadyExists(
        f"A repository creation template with prefix '{prefix}' already exists in the "
        f"registry with id '{registry_id}'."
    )
