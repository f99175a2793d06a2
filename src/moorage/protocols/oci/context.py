"""What handlers get from the application and the request: services and the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from moorage.domain.addresses import RegistryAddresses
from moorage.ports.access import Authenticator, Authorizer, Principal
from moorage.services.blobs import BlobService
from moorage.services.images import ImageService
from moorage.services.pull_through_cache import PullThroughCache
from moorage.services.repositories import RepositoryService
from moorage.services.uploads import UploadService


@dataclass(frozen=True)
class OciServices:
    repositories: RepositoryService
    images: ImageService
    blobs: BlobService
    uploads: UploadService
    authenticator: Authenticator
    authorizer: Authorizer
    addresses: RegistryAddresses | None = None
    # The pull-through cache of this region (None: no repository is a cache).
    cache: PullThroughCache | None = None
    # The services of another region (None when it is not served); without it every
    # request acts in this one.
    in_region: Callable[[str], OciServices | None] | None = None
    # On an address whose paths name the registry (the public address: /v2/<alias>/<repo>),
    # the (registry id, repository) a path's name means; raises RepositoryNotFound. None:
    # the path's name is the repository, and the host or the caller names the registry.
    path_names: Callable[[str], Awaitable[tuple[str, str]]] | None = None
    # The token endpoint hands anonymous callers a token (the public address's flow).
    anonymous_tokens: bool = False


SERVICES = web.AppKey("moorage.oci.services", OciServices)
PRINCIPAL_KEY = web.RequestKey("moorage.principal", Principal)
REGISTRY_ID_KEY = web.RequestKey("moorage.registry_id", str)
REGIONAL_SERVICES_KEY = web.RequestKey("moorage.oci.regional_services", OciServices)
NAME_KEY = web.RequestKey("moorage.oci.repository_name", str)


def services(request: web.Request) -> OciServices:
    """The services of the region the request acts in (see :func:`select_region`)."""
    regional: OciServices | None = request.get(REGIONAL_SERVICES_KEY)
    return regional if regional is not None else request.app[SERVICES]


def select_region(request: web.Request) -> bool:
    """Act in the region the request's ``Host`` names, when the host template says; False
    when that region is not served (the caller answers NAME_UNKNOWN: no repository of the
    request can be there)."""
    base = request.app[SERVICES]
    if base.addresses is None or base.in_region is None:
        return True
    region = base.addresses.region_of_host(request.host)
    if region is None or region == base.addresses.region:
        return True
    regional = base.in_region(region)
    if regional is None:
        return False
    request[REGIONAL_SERVICES_KEY] = regional
    return True


def principal(request: web.Request) -> Principal:
    caller: Principal | None = request.get(PRINCIPAL_KEY)
    if caller is None:
        raise RuntimeError("handler ran without an authenticated principal")
    return caller


def registry_id(request: web.Request) -> str:
    """The registry (account) a request addresses: the one its host names, else the caller's."""
    selected: str | None = request.get(REGISTRY_ID_KEY)
    return selected if selected is not None else principal(request).registry_id


def addressed_registry(request: web.Request) -> str | None:
    """The account the request's ``Host`` names, when the host template says (else None)."""
    addresses = services(request).addresses
    return None if addresses is None else addresses.registry_of_host(request.host)


def repository_name(request: web.Request) -> str:
    """The repository the request acts on: the path's name, or what it means on an address
    whose paths name the registry too (``OciServices.path_names``)."""
    resolved: str | None = request.get(NAME_KEY)
    return resolved if resolved is not None else request.match_info["name"]


def path_name(request: web.Request) -> str:
    """The name as the request's path gives it, for the URLs answered (``Location``)."""
    return request.match_info["name"]
