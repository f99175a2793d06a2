"""Composition root: read settings, build adapters, wire services, mount the protocols."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from moorage.config import Settings
from moorage.ports.access import Authenticator, Authorizer
from moorage.ports.blobs import BlobStore
from moorage.ports.clock import system_clock
from moorage.ports.metadata import MetadataStore
from moorage.protocols.oci import app as oci
from moorage.protocols.oci.context import OciServices
from moorage.services.access import AnonymousAuthenticator, OpenAccess
from moorage.services.blobs import BlobService
from moorage.services.images import ImageService
from moorage.services.repositories import RepositoryService
from moorage.services.uploads import UploadService
from moorage.storage.blobs import build_blob_store
from moorage.storage.metadata.sql.store import open_sql_metadata_store

log = logging.getLogger("moorage")


@dataclass
class Registry:
    """The wired application: storage adapters and the services built on them."""

    settings: Settings
    metadata: MetadataStore
    blob_store: BlobStore
    repositories: RepositoryService
    images: ImageService
    blobs: BlobService
    uploads: UploadService

    async def close(self) -> None:
        await self.images.close()
        await self.blob_store.close()
        await self.metadata.close()


async def open_registry(settings: Settings) -> Registry:
    """Open storage (running database migrations) and build the services."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    blob_store = build_blob_store(settings.blob_store, root=settings.data_dir)
    return wire(settings, metadata, blob_store)


def wire(settings: Settings, metadata: MetadataStore, blob_store: BlobStore) -> Registry:
    clock = system_clock
    repositories = RepositoryService(metadata, clock, settings.create_on_push)
    return Registry(
        settings=settings,
        metadata=metadata,
        blob_store=blob_store,
        repositories=repositories,
        images=ImageService(metadata, repositories, clock),
        blobs=BlobService(metadata, blob_store),
        uploads=UploadService(
            metadata, blob_store, repositories, clock, settings.max_concurrent_uploads
        ),
    )


REGISTRY = web.AppKey("moorage.registry", Registry)


def build_web_app(
    registry: Registry,
    *,
    authenticator: Authenticator | None = None,
    authorizer: Authorizer | None = None,
) -> web.Application:
    """The HTTP application: ``/v2/`` and ``/healthz``.

    Without an authenticator and authorizer, every caller is the default account's
    anonymous principal and every action is allowed.
    """
    app = web.Application(middlewares=list(oci.MIDDLEWARES))
    app[REGISTRY] = registry
    oci.mount(
        app,
        OciServices(
            repositories=registry.repositories,
            images=registry.images,
            blobs=registry.blobs,
            uploads=registry.uploads,
            authenticator=authenticator or AnonymousAuthenticator(registry.settings.registry_id),
            authorizer=authorizer or OpenAccess(),
        ),
    )
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    """200 when the metadata store answers; 503 otherwise."""
    registry = request.app[REGISTRY]
    try:
        async with registry.metadata.read() as tx:
            await tx.list_repositories(registry.settings.registry_id, limit=1)
    except Exception:
        log.exception("health check failed")
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})
