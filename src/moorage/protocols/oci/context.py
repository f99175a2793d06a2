"""What handlers get from the application and the request: services and the caller."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from moorage.ports.access import Authenticator, Authorizer, Principal
from moorage.services.blobs import BlobService
from moorage.services.images import ImageService
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


SERVICES = web.AppKey("moorage.oci.services", OciServices)
PRINCIPAL_KEY = web.RequestKey("moorage.principal", Principal)


def services(request: web.Request) -> OciServices:
    return request.app[SERVICES]


def principal(request: web.Request) -> Principal:
    caller: Principal | None = request.get(PRINCIPAL_KEY)
    if caller is None:
        raise RuntimeError("handler ran without an authenticated principal")
    return caller


def registry_id(request: web.Request) -> str:
    """The registry (account) a request addresses: the caller's, until hosts select one."""
    return principal(request).registry_id


def repository_name(request: web.Request) -> str:
    return request.match_info["name"]
