"""Repository creation templates: the settings a repository gets when moorage creates it on
someone's behalf (shared reference §8.3; Create/Describe/Update/DeleteRepositoryCreationTemplate).

A template applies to the ways of creation it names (``appliedFor``): ``REPLICATION`` (a
replica's repository), ``PULL_THROUGH_CACHE`` (a cache's first pull), ``CREATE_ON_PUSH`` (a
push to a name a create-on-push pattern admits). Its ``prefix`` matches a name as a cache
rule's does: ``prod`` matches ``prod/...``; the longest matching prefix wins, and ``ROOT``
matches every name no other template of that kind matches. Settings apply only at
creation; existing repositories are never changed.

ECR requires a ``customRoleArn`` for a template that sets KMS encryption or resource tags
(the role ECR assumes to do so). moorage acts itself and has no roles yet, so the role is
stored and answered but not required (TODO(#15): IAM roles).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from moorage.domain.models import TagMutability

ROOT = "ROOT"
# Our bound, not an ECR quota (AWS documents none): every creation reads them all.
MAX_TEMPLATES = 300


class AppliedFor(StrEnum):
    REPLICATION = "REPLICATION"
    PULL_THROUGH_CACHE = "PULL_THROUGH_CACHE"
    CREATE_ON_PUSH = "CREATE_ON_PUSH"


@dataclass(frozen=True, slots=True)
class CreationTemplate:
    prefix: str  # without a trailing '/', or ROOT
    applied_for: tuple[AppliedFor, ...]
    description: str | None = None
    encryption_type: str = "AES256"
    kms_key: str | None = None
    resource_tags: Mapping[str, str] = field(default_factory=dict)
    image_tag_mutability: TagMutability = TagMutability.MUTABLE
    mutability_exclusion_filters: tuple[str, ...] = ()
    repository_policy: str | None = None
    lifecycle_policy: str | None = None
    custom_role_arn: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def owns(self, repository: str) -> bool:
        return self.prefix == ROOT or repository.startswith(self.prefix + "/")


def template_for(
    templates: Iterable[CreationTemplate], repository: str, applied_for: AppliedFor
) -> CreationTemplate | None:
    """The template for a repository created by ``applied_for``: the longest prefix of that
    kind that matches, else that kind's ROOT template."""
    best: CreationTemplate | None = None
    for template in templates:
        if applied_for not in template.applied_for or not template.owns(repository):
            continue
        if (
            best is None
            or best.prefix == ROOT
            or (template.prefix != ROOT and len(template.prefix) > len(best.prefix))
        ):
            best = template
    return best


def normalize_prefix(prefix: str) -> str:
    return prefix if prefix == ROOT else prefix.rstrip("/")


def template_to_document(template: CreationTemplate) -> dict[str, Any]:
    """Everything but the prefix and the times, for the store's one JSON column."""
    return {
        "applied_for": [a.value for a in template.applied_for],
        "description": template.description,
        "encryption_type": template.encryption_type,
        "kms_key": template.kms_key,
        "resource_tags": dict(template.resource_tags),
        "image_tag_mutability": template.image_tag_mutability.value,
        "mutability_exclusion_filters": list(template.mutability_exclusion_filters),
        "repository_policy": template.repository_policy,
        "lifecycle_policy": template.lifecycle_policy,
        "custom_role_arn": template.custom_role_arn,
    }


def template_from_document(
    prefix: str, document: Mapping[str, Any], created_at: datetime, updated_at: datetime
) -> CreationTemplate:
    return CreationTemplate(
        prefix=prefix,
        applied_for=tuple(AppliedFor(a) for a in document["applied_for"]),
        description=document.get("description"),
        encryption_type=document.get("encryption_type") or "AES256",
        kms_key=document.get("kms_key"),
        resource_tags=dict(document.get("resource_tags") or {}),
        image_tag_mutability=TagMutability(document.get("image_tag_mutability") or "MUTABLE"),
        mutability_exclusion_filters=tuple(document.get("mutability_exclusion_filters") or ()),
        repository_policy=document.get("repository_policy"),
        lifecycle_policy=document.get("lifecycle_policy"),
        custom_role_arn=document.get("custom_role_arn"),
        created_at=created_at,
        updated_at=updated_at,
    )
