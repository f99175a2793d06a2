"""ECR Public's operations (``ecr-public`` 2020-10-30): public repositories, their catalog
data and policies, the registries and their catalog data, images, tags, layers and the
authorization token. The operations of the model that are marketplace or premium features
(premium repositories, entitlements, publisher reports, repository associations, image
status and repository state) are not offered: they answer ``UnsupportedCommandException``,
ECR Public's own error for a command it does not support.

The handlers get the :class:`~moorage.app.PublicSite`: the ordinary services acting in the
public namespace. Where an ECR handler does exactly what ECR Public's operation does (the
layer upload, resource tags, repository policies, image deletion), it is called as it is:
it uses only services the site has under the same names.

Authorization: the dispatcher has authorized ``ecr-public:<Operation>`` on the repository
named (``arn:aws:ecr-public::<account>:repository/<name>``), else on the registry (``*``),
with the repository's policy taking part as in ECR. ``registryId`` may be an alias where the
model says ``RegistryIdOrAlias``; the dispatcher resolves it (``RegistryNotFoundException``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, cast

from moorage.domain.models import Repository
from moorage.domain.public import CatalogData, PublicRegistry
from moorage.iam.actions import public_registry_arn, public_repository_arn
from moorage.ports.clock import system_clock
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.ecr.operations import images as ecr_images
from moorage.protocols.aws.ecr.operations import layers as ecr_layers
from moorage.protocols.aws.ecr.operations import policies as ecr_policies
from moorage.protocols.aws.ecr.operations import repositories as ecr_repositories
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import decode_token, encode_token
from moorage.services.images import ImageDetail, TagStatus
from moorage.services.public import PublicSite

Context = ApiContext[PublicSite]
DEFAULT_PAGE = 100
# ECR Public's only repository type for what this registry offers (the model's FREE).
FREE = "FREE"
ACTIVE = "ACTIVE"  # ImageStatus: nothing is deprecated here
ALIAS_ACTIVE = "ACTIVE"

# The operations of the model that are ECR Public's marketplace and premium features: not
# offered here, so the dispatcher answers UnsupportedCommandException for each.
NOT_OFFERED = frozenset(
    {
        "AssociateRepositories",
        "CreatePremiumRepository",
        "DeletePremiumRepository",
        "DeletePremiumRepositoryPolicy",
        "DescribeEntitledImageTags",
        "DescribeEntitledImages",
        "DescribeEntitledRepositories",
        "DescribeImageScanFindings",
        "DescribePremiumRepositories",
        "DisassociateRepositories",
        "GetDownloadUrlForPublisherReport",
        "GetPremiumRepositoryCatalogData",
        "GetPremiumRepositoryPolicy",
        "ListPublisherReports",
        "PutPremiumRepositoryCatalogData",
        "PutPremiumRepositoryProducts",
        "SetImageStatus",
        "SetPremiumRepositoryPolicy",
        "SetRepositoryState",
    }
)


def _as_ecr(ctx: Context) -> Any:
    # An ECR handler called for ECR Public reads ctx.services.{repositories, images,
    # uploads, blobs} and ctx.registry_id, which a PublicSite context has.
    return cast(Any, ctx)


# -- presentation ------------------------------------------------------------------------------


def public_host(ctx: Context) -> str:
    return ctx.services.address(ctx.host)


def repository_uri(ctx: Context, alias: str, name: str) -> str:
    return f"{public_host(ctx)}/{alias}/{name}"


def logo_url(ctx: Context, alias: str, name: str | None = None) -> str:
    """Where the gallery serves a logo (``protocols/gallery``)."""
    path = f"{alias}/{name}" if name else alias
    return f"{ctx.scheme}://{ctx.host}/gallery/_logos/{path}"


def _repository(ctx: Context, repository: Repository, alias: str) -> dict[str, Any]:
    return {
        "repository_arn": public_repository_arn(repository.registry_id, repository.name),
        "registry_id": repository.registry_id,
        "repository_name": repository.name,
        "repository_uri": repository_uri(ctx, alias, repository.name),
        "created_at": repository.created_at,
    }


def _catalog(ctx: Context, data: CatalogData, alias: str, name: str) -> dict[str, Any]:
    return {
        "description": data.description or None,
        "architectures": list(data.architectures) or None,
        "operating_systems": list(data.operating_systems) or None,
        "logo_url": logo_url(ctx, alias, name) if data.logo else None,
        "about_text": data.about_text or None,
        "usage_text": data.usage_text or None,
        "categories": list(data.categories) or None,
        "marketplace_certified": False,
    }


def _registry(ctx: Context, registry: PublicRegistry) -> dict[str, Any]:
    return {
        "registry_id": registry.registry_id,
        "registry_arn": public_registry_arn(registry.registry_id),
        "registry_uri": f"{public_host(ctx)}/{registry.alias}",
        "verified": registry.verified,
        "aliases": [
            {
                "name": registry.alias,
                "status": ALIAS_ACTIVE,
                "primary_registry_alias": True,
                "default_registry_alias": True,
            }
        ],
    }


def _registry_catalog(ctx: Context, registry: PublicRegistry | None) -> dict[str, Any]:
    if registry is None:
        return {}
    return {
        "display_name": registry.display_name or None,
        "description": registry.description or None,
        "logo_url": logo_url(ctx, registry.alias) if registry.logo else None,
    }


def _image_detail(registry_id: str, name: str, detail: ImageDetail) -> dict[str, Any]:
    manifest = detail.manifest
    return {
        "registry_id": registry_id,
        "repository_name": name,
        "image_digest": manifest.digest,
        "image_tags": list(detail.tags) or None,
        "image_size_in_bytes": detail.size,
        "image_pushed_at": manifest.pushed_at,
        "image_manifest_media_type": manifest.media_type,
        "artifact_media_type": manifest.config_media_type,
        "subject_manifest_digest": manifest.subject,
        "image_status": ACTIVE,
    }


async def _alias(ctx: Context, registry_id: str) -> str:
    return (await ctx.services.catalog.ensure(registry_id)).alias


# -- repositories ------------------------------------------------------------------------------


@operation("CreateRepository")
async def create_repository(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    """A public repository with its catalog data and tags; the account's public registry
    (and its default alias) comes with its first. Raises InvalidName, InvalidParameter,
    InvalidTagParameter, TooManyTags, RepositoryAlreadyExists; AccessDenied when tags are
    given and the caller may not ``ecr-public:TagResource``."""
    name: str = params["repository_name"]
    tags = ecr_repositories.request_tags(params.get("tags"))
    if tags:
        await ctx.authorize("ecr-public:TagResource", name, request_tags=tags, tag_keys=tuple(tags))
    created = await ctx.services.catalog.create_repository(
        ctx.registry_id, name, catalog=params.get("catalog_data") or {}, tags=tags
    )
    alias = await _alias(ctx, ctx.registry_id)
    return {
        "repository": _repository(ctx, created.repository, alias),
        "catalog_data": _catalog(ctx, created.catalog, alias, name),
    }


@operation("DescribeRepositories")
async def describe_repositories(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    """The named public repositories, or a page of all in binary order of name (as ECR's
    DescribeRepositories pages them)."""
    names: list[str] | None = params.get("repository_names")
    token: str | None = params.get("next_token")
    limit: int | None = params.get("max_results")
    registry = await ctx.services.catalog.get(ctx.registry_id)
    repositories = ctx.services.repositories
    if names is not None:
        found = await repositories.describe(ctx.registry_id, names, after=token, limit=limit)
        next_token = None
    else:
        scope = f"{ctx.operation}/{ctx.registry_id}"
        cursor = decode_token(scope, token)
        size = limit or DEFAULT_PAGE
        page = await repositories.list(
            ctx.registry_id, after=cursor[0] if cursor else None, limit=size + 1
        )
        found = page[:size]
        next_token = encode_token(scope, [page[size - 1].name]) if len(page) > size else None
    alias = registry.alias if registry is not None else ""
    return {
        "repositories": [_repository(ctx, repository, alias) for repository in found],
        "next_token": next_token,
    }


@operation("DeleteRepository")
async def delete_repository(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    """Delete a public repository (with its images only when ``force``). Raises
    RepositoryNotFound, RepositoryNotEmpty."""
    repository = await ctx.services.repositories.delete(
        ctx.registry_id, params["repository_name"], force=bool(params.get("force", False))
    )
    return {"repository": _repository(ctx, repository, await _alias(ctx, ctx.registry_id))}


@operation("GetRepositoryCatalogData")
async def get_repository_catalog_data(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    data = await ctx.services.catalog.catalog_data(ctx.registry_id, name)
    return {"catalog_data": _catalog(ctx, data, await _alias(ctx, ctx.registry_id), name)}


@operation("PutRepositoryCatalogData")
async def put_repository_catalog_data(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    data = await ctx.services.catalog.put_catalog_data(
        ctx.registry_id, name, params["catalog_data"]
    )
    return {"catalog_data": _catalog(ctx, data, await _alias(ctx, ctx.registry_id), name)}


# -- registries --------------------------------------------------------------------------------


@operation("DescribeRegistries")
async def describe_registries(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    """The caller's public registry (ECR Public lists the caller's own; it has one), made
    with its default alias if the account has none yet."""
    registry = await ctx.services.catalog.ensure(ctx.principal.registry_id)
    return {"registries": [_registry(ctx, registry)]}


@operation("GetRegistryCatalogData")
async def get_registry_catalog_data(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    registry = await ctx.services.catalog.get(ctx.principal.registry_id)
    return {"registry_catalog_data": _registry_catalog(ctx, registry)}


@operation("PutRegistryCatalogData")
async def put_registry_catalog_data(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    registry = await ctx.services.catalog.put_registry_catalog(
        ctx.principal.registry_id,
        display_name=params.get("display_name"),
        description=params.get("description"),
        logo=params.get("logo_image_blob"),
    )
    return {"registry_catalog_data": _registry_catalog(ctx, registry)}


@operation("GetAuthorizationToken")
async def get_authorization_token(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    """The caller's login for public pulls at a higher rate and for pushes: base64 of
    ``AWS:<password>``, 12 hours, as ``aws ecr-public get-login-password`` reads it. ECR
    Public needs ``sts:GetServiceBearerToken`` too, which is asked here."""
    await ctx.authorize("sts:GetServiceBearerToken", None)
    password, expires_at = ctx.services.login_tokens.issue(ctx.principal, system_clock())
    token = base64.b64encode(f"AWS:{password}".encode("ascii")).decode("ascii")
    return {"authorization_data": {"authorization_token": token, "expires_at": expires_at}}


# -- images ------------------------------------------------------------------------------------


@operation("DescribeImages")
async def describe_images(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    name: str = params["repository_name"]
    scope = f"DescribeImages:{ctx.registry_id}/{name}"
    named = params.get("image_ids")
    limit = params.get("max_results")
    if named is None and limit is None:
        limit = DEFAULT_PAGE
    page = await ctx.services.images.describe(
        ctx.registry_id,
        name,
        image_ids=None if named is None else ecr_images.image_ids_of(named),
        after=decode_token(scope, params.get("next_token")),
        limit=limit,
    )
    return {
        "image_details": [_image_detail(ctx.registry_id, name, d) for d in page.items],
        "next_token": encode_token(scope, page.after),
    }


@operation("DescribeImageTags")
async def describe_image_tags(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    """Each tag with the image it names. A page holds the tags of ``maxResults`` tagged
    images (an image's tags are never split over two pages)."""
    name: str = params["repository_name"]
    scope = f"DescribeImageTags:{ctx.registry_id}/{name}"
    page = await ctx.services.images.describe(
        ctx.registry_id,
        name,
        tag_status=TagStatus.TAGGED,
        after=decode_token(scope, params.get("next_token")),
        limit=params.get("max_results", DEFAULT_PAGE),
    )
    details = []
    for detail in page.items:
        manifest = detail.manifest
        image = {
            "image_digest": manifest.digest,
            "image_size_in_bytes": detail.size,
            "image_pushed_at": manifest.pushed_at,
            "image_manifest_media_type": manifest.media_type,
            "artifact_media_type": manifest.config_media_type,
            "image_status": ACTIVE,
        }
        for tag in detail.tags:
            details.append(
                {"image_tag": tag, "created_at": manifest.pushed_at, "image_detail": image}
            )
    return {"image_tag_details": details, "next_token": encode_token(scope, page.after)}


@operation("PutImage")
async def put_image(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_images.put_image(_as_ecr(ctx), params)


@operation("BatchDeleteImage")
async def batch_delete_image(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_images.batch_delete_image(_as_ecr(ctx), params)


# -- layers ------------------------------------------------------------------------------------


@operation("BatchCheckLayerAvailability")
async def batch_check_layer_availability(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_layers.batch_check_layer_availability(_as_ecr(ctx), params)


@operation("InitiateLayerUpload")
async def initiate_layer_upload(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_layers.initiate_layer_upload(_as_ecr(ctx), params)


@operation("UploadLayerPart")
async def upload_layer_part(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_layers.upload_layer_part(_as_ecr(ctx), params)


@operation("CompleteLayerUpload")
async def complete_layer_upload(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_layers.complete_layer_upload(_as_ecr(ctx), params)


# -- policies and resource tags ----------------------------------------------------------------


@operation("SetRepositoryPolicy")
async def set_repository_policy(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_policies.set_repository_policy(_as_ecr(ctx), params)


@operation("GetRepositoryPolicy")
async def get_repository_policy(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_policies.get_repository_policy(_as_ecr(ctx), params)


@operation("DeleteRepositoryPolicy")
async def delete_repository_policy(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_policies.delete_repository_policy(_as_ecr(ctx), params)


@operation("TagResource")
async def tag_resource(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_repositories.tag_resource(_as_ecr(ctx), params)


@operation("UntagResource")
async def untag_resource(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_repositories.untag_resource(_as_ecr(ctx), params)


@operation("ListTagsForResource")
async def list_tags_for_resource(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
    return await ecr_repositories.list_tags_for_resource(_as_ecr(ctx), params)
