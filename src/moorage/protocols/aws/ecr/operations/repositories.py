"""Repositories: CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability,
PutImageScanningConfiguration, and resource tags (TagResource, UntagResource,
ListTagsForResource).

The rules live in ``services/repositories.py``; these handlers turn the validated input into
its call and the :class:`~moorage.domain.models.Repository` it returns into ECR's
``Repository`` object (:func:`repository_output`), whose ARN and URI are derived here because
they depend on the region and on how the client reached the server.

Authorization: the dispatcher has authorized each operation's own action on the repository it
names (the one in ``resourceArn`` for the tag operations), with ``aws:RequestTag/*`` and
``aws:TagKeys`` for CreateRepository, TagResource and UntagResource. CreateRepository with
tags also needs ``ecr:TagResource``, which it asks for itself, as AWS does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from moorage.domain.models import Repository, TagMutability
from moorage.iam.actions import Action, aws_managed_ecr_key_arn, repository_arn
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import decode_token, encode_token

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry

# ECR's only exclusion filter type (ImageTagMutabilityExclusionFilterType).
WILDCARD = "WILDCARD"
# DescribeRepositories' page when maxResults is not given (ECR's default).
DEFAULT_PAGE_SIZE = 100


def repository_output(ctx: ApiContext[Registry], repository: Repository) -> dict[str, Any]:
    """ECR's ``Repository`` object (snake_case) for ``repository``.

    ``repositoryUri`` uses the registry host template, else the host the client used.
    ``imageTagMutabilityExclusionFilters`` is left out when there are none, as ECR does;
    ``kmsKey`` of a KMS-encrypted repository created without a key is the account's
    AWS-managed key, as ECR shows it (``aws_managed_ecr_key_arn``).
    """
    registry_id = repository.registry_id
    filters = [
        {"filter_type": WILDCARD, "filter": value}
        for value in repository.mutability_exclusion_filters
    ]
    encryption: dict[str, Any] = {"encryption_type": repository.encryption_type}
    if repository.kms_key is not None:
        encryption["kms_key"] = repository.kms_key
    elif repository.encryption_type != "AES256":  # KMS, KMS_DSSE
        encryption["kms_key"] = aws_managed_ecr_key_arn(ctx.region, registry_id)
    return {
        "repository_arn": repository_arn(ctx.region, registry_id, repository.name),
        "registry_id": registry_id,
        "repository_name": repository.name,
        "repository_uri": ctx.services.addresses.repository_uri(
            registry_id, repository.name, ctx.host
        ),
        "created_at": repository.created_at,
        "image_tag_mutability": repository.image_tag_mutability,
        "image_tag_mutability_exclusion_filters": filters or None,
        "image_scanning_configuration": {"scan_on_push": repository.scan_on_push},
        "encryption_configuration": encryption,
    }


def request_tags(tags: Sequence[Mapping[str, str]] | None) -> dict[str, str]:
    """A ``TagList`` as a mapping; a key given twice keeps its last value."""
    return {tag["key"]: tag["value"] for tag in tags or ()}


def _exclusion_filters(params: Mapping[str, Any]) -> list[str]:
    # filterType can only be WILDCARD (the model's enum), so only the pattern matters.
    return [f["filter"] for f in params.get("image_tag_mutability_exclusion_filters") or ()]


@operation("CreateRepository")
async def create_repository(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    """Create a repository with its settings and tags. Raises InvalidName, InvalidParameter,
    InvalidTagParameter, TooManyTags, RepositoryAlreadyExists; AccessDeniedException when
    tags are given and the caller may not ``ecr:TagResource``."""
    name: str = params["repository_name"]
    tags = request_tags(params.get("tags"))
    if tags:
        # ECR authorizes tag-on-create as a TagResource on the new repository.
        await ctx.authorize(Action.TAG_RESOURCE, name, request_tags=tags, tag_keys=tuple(tags))
    scanning = params.get("image_scanning_configuration") or {}
    encryption = params.get("encryption_configuration") or {}
    repository = await ctx.services.repositories.create(
        ctx.registry_id,
        name,
        image_tag_mutability=TagMutability(params.get("image_tag_mutability", "MUTABLE")),
        exclusion_filters=_exclusion_filters(params),
        scan_on_push=bool(scanning.get("scan_on_push", False)),
        encryption_type=encryption.get("encryption_type", "AES256"),
        kms_key=encryption.get("kms_key"),
        tags=tags,
    )
    return {"repository": repository_output(ctx, repository)}


@operation("DescribeRepositories")
async def describe_repositories(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """The named repositories, or one page of all of them in binary order of name.

    ``nextToken`` is opaque (``pagination.py``; it holds the last name shown); a page has
    ``maxResults`` (1-1000, default 100) repositories and a ``nextToken`` when more follow.
    Raises RepositoryNotFound for an unknown name, InvalidParameter for names given with
    ``nextToken`` or ``maxResults``.
    """
    names: list[str] | None = params.get("repository_names")
    token: str | None = params.get("next_token")
    limit: int | None = params.get("max_results")
    if names is not None:
        # The service refuses names combined with a cursor or a page size, with ECR's error.
        repositories = await ctx.services.repositories.describe(
            ctx.registry_id, names, after=token, limit=limit
        )
        return {"repositories": [repository_output(ctx, r) for r in repositories]}
    # The token's scope binds it to this operation and registry.
    scope = f"{ctx.operation}/{ctx.registry_id}"
    cursor = decode_token(scope, token)
    after = cursor[0] if cursor else None
    size = limit or DEFAULT_PAGE_SIZE
    # One more than the page shows whether another page follows.
    page = await ctx.services.repositories.list(ctx.registry_id, after=after, limit=size + 1)
    result: dict[str, Any] = {"repositories": [repository_output(ctx, r) for r in page[:size]]}
    if len(page) > size:
        result["next_token"] = encode_token(scope, [page[size - 1].name])
    return result


@operation("DeleteRepository")
async def delete_repository(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    """Delete a repository (with its images only when ``force``); returns it as it was.
    Raises RepositoryNotFound, RepositoryNotEmpty."""
    repository = await ctx.services.repositories.delete(
        ctx.registry_id, params["repository_name"], force=bool(params.get("force", False))
    )
    return {"repository": repository_output(ctx, repository)}


@operation("PutImageTagMutability")
async def put_image_tag_mutability(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Replace the tag mutability and its exclusion filters; echoes them as stored.
    Raises RepositoryNotFound, InvalidParameter (filters that do not fit the mode)."""
    repository = await ctx.services.repositories.put_tag_mutability(
        ctx.registry_id,
        params["repository_name"],
        TagMutability(params["image_tag_mutability"]),
        _exclusion_filters(params),
    )
    output = repository_output(ctx, repository)
    return {
        "registry_id": repository.registry_id,
        "repository_name": repository.name,
        "image_tag_mutability": output["image_tag_mutability"],
        "image_tag_mutability_exclusion_filters": output["image_tag_mutability_exclusion_filters"],
    }


@operation("PutImageScanningConfiguration")
async def put_image_scanning_configuration(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Set scan on push (absent ``scanOnPush`` means false, as in ECR). Raises
    RepositoryNotFound."""
    scanning = params["image_scanning_configuration"]
    repository = await ctx.services.repositories.put_scanning_configuration(
        ctx.registry_id, params["repository_name"], bool(scanning.get("scan_on_push", False))
    )
    return {
        "registry_id": repository.registry_id,
        "repository_name": repository.name,
        "image_scanning_configuration": {"scan_on_push": repository.scan_on_push},
    }


def _tagged_repository(ctx: ApiContext[Registry]) -> str:
    # The dispatcher read the repository (and account) from resourceArn, which is required.
    assert ctx.repository is not None, "resourceArn names a repository"
    return ctx.repository


@operation("TagResource")
async def tag_resource(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    """Add tags to the repository ``resourceArn`` names, overwriting existing keys' values.
    Raises InvalidParameter (ARN), RepositoryNotFound, InvalidTagParameter, TooManyTags."""
    await ctx.services.repositories.tag_resource(
        ctx.registry_id, _tagged_repository(ctx), request_tags(params["tags"])
    )
    return {}


@operation("UntagResource")
async def untag_resource(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    """Remove the tags with these keys (keys not present are ignored). Raises
    InvalidParameter (ARN), RepositoryNotFound, InvalidTagParameter."""
    await ctx.services.repositories.untag_resource(
        ctx.registry_id, _tagged_repository(ctx), params["tag_keys"]
    )
    return {}


@operation("ListTagsForResource")
async def list_tags_for_resource(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """The repository's tags in binary order of key. Raises RepositoryNotFound."""
    tags = await ctx.services.repositories.list_tags(ctx.registry_id, _tagged_repository(ctx))
    return {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
