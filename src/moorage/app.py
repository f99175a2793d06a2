"""Composition root: read settings, build adapters, wire services, mount the protocols."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from moorage.config import Settings
from moorage.domain.addresses import RegistryAddresses
from moorage.iam.download_tokens import DownloadTokens
from moorage.iam.login_tokens import LoginTokens
from moorage.iam.secrets import KeyRing, MasterKey, load_master_key
from moorage.ports.access import Authenticator, Authorizer
from moorage.ports.blobs import BlobStore
from moorage.ports.clock import system_clock
from moorage.ports.metadata import MetadataStore
from moorage.protocols import downloads, emulator
from moorage.protocols.connections import REFUSAL_THROTTLE, RefusalThrottle
from moorage.protocols.ecr_api import app as ecr_api
from moorage.protocols.ecr_api.auth import ApiAuthenticator
from moorage.protocols.ecr_api.operations import OperationTable
from moorage.protocols.ecr_api.operations import images as image_operations
from moorage.protocols.ecr_api.operations import layers as layer_operations
from moorage.protocols.ecr_api.operations import lifecycle as lifecycle_operations
from moorage.protocols.ecr_api.operations import policies as policy_operations
from moorage.protocols.ecr_api.operations import registry as registry_operations
from moorage.protocols.ecr_api.operations import repositories as repository_operations
from moorage.protocols.ecr_api.operations import (
    scanning_configuration as scanning_configuration_operations,
)
from moorage.protocols.ecr_api.operations import scans as scan_operations
from moorage.protocols.oci import app as oci
from moorage.protocols.oci.context import OciServices
from moorage.services.access import EmulatorAuthenticator
from moorage.services.authentication import (
    ApiKeyAuthenticator,
    EmulatorApiAuthenticator,
    RegistryAuthenticator,
)
from moorage.services.authorization import PolicyAuthorizer, StoredPolicies
from moorage.services.blobs import BlobService
from moorage.services.downloads import LayerDownloadService
from moorage.services.identities import IdentityService
from moorage.services.image_scanner import ImageScanner
from moorage.services.images import ImageService
from moorage.services.lifecycle import LifecycleService
from moorage.services.registry import RegistryService
from moorage.services.repositories import RepositoryService
from moorage.services.scanning import ScanService
from moorage.services.uploads import UploadService
from moorage.services.write_slots import WriteLimits
from moorage.storage.blobs import build_blob_store
from moorage.storage.metadata.sql.store import open_sql_metadata_store

log = logging.getLogger("moorage")


@dataclass
class Registry:
    """The wired application: storage adapters, the services built on them, and the doors
    (authenticators, authorizer) every protocol goes through."""

    settings: Settings
    metadata: MetadataStore
    blob_store: BlobStore
    repositories: RepositoryService
    images: ImageService
    lifecycle: LifecycleService
    scanning: ScanService
    blobs: BlobService
    uploads: UploadService
    layer_downloads: LayerDownloadService
    identities: IdentityService
    registry_settings: RegistryService
    login_tokens: LoginTokens
    addresses: RegistryAddresses
    authorizer: Authorizer
    registry_authenticator: Authenticator
    api_authenticator: ApiAuthenticator

    async def close(self) -> None:
        await self.images.close()
        await self.blob_store.close()
        await self.metadata.close()

    async def wipe(self) -> None:
        """Forget every account, repository, image and job (emulator mode's reset); the
        periodic jobs' schedules stay.

        Blob files stay on disk unreferenced; garbage collection frees them.
        """
        await self.metadata.wipe()


async def open_registry(settings: Settings) -> Registry:
    """Open storage (running database migrations) and build the services."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = KeyRing.derive(load_master_key(settings.master_key, settings.data_dir))
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    blob_store = build_blob_store(settings.blob_store, root=settings.data_dir)
    return wire(settings, metadata, blob_store, keys)


def wire(
    settings: Settings,
    metadata: MetadataStore,
    blob_store: BlobStore,
    keys: KeyRing | None = None,
) -> Registry:
    """Build the services. Without ``keys`` a fresh master key is made up: login tokens and
    stored secrets then last as long as this object (tests)."""
    clock = system_clock
    keys = keys or KeyRing.derive(MasterKey.generate())
    repositories = RepositoryService(metadata, clock, settings.create_on_push)
    identities = IdentityService(metadata, keys.access_key_secrets, clock)
    registry_settings = RegistryService(metadata, clock)
    login_tokens = LoginTokens(keys.registry_login)
    authorizer = PolicyAuthorizer(
        StoredPolicies(identities, registry_settings), clock, settings.region
    )
    registry_authenticator: Authenticator
    api_authenticator: ApiAuthenticator
    if settings.emulator:
        registry_authenticator = EmulatorAuthenticator(settings.emulator_registry_id)
        api_authenticator = EmulatorApiAuthenticator(settings.emulator_registry_id)
    else:
        registry_authenticator = RegistryAuthenticator(metadata, login_tokens, clock)
        api_authenticator = ApiKeyAuthenticator(
            metadata, keys.access_key_secrets, clock, region=settings.region
        )
    images = ImageService(metadata, repositories, clock, fixture_images=settings.fixture_images)
    uploads = UploadService(
        metadata,
        blob_store,
        repositories,
        clock,
        WriteLimits(
            total=settings.max_concurrent_uploads,
            per_account=settings.max_uploads_per_account,
            per_client=settings.max_uploads_per_client,
        ),
    )
    addresses = RegistryAddresses(settings.registry_host, settings.region)
    listen_host = f"{settings.host}:{settings.port}"
    scanning = ScanService(
        metadata,
        blob_store,
        images,
        uploads,
        ImageScanner(metadata, blob_store),
        clock,
        registry_host=lambda registry_id: addresses.host(registry_id, listen_host),
    )
    images.add_push_hook(scanning.on_push)
    return Registry(
        settings=settings,
        metadata=metadata,
        blob_store=blob_store,
        repositories=repositories,
        images=images,
        lifecycle=LifecycleService(metadata, images, clock),
        scanning=scanning,
        blobs=BlobService(metadata, blob_store),
        layer_downloads=LayerDownloadService(
            metadata, BlobService(metadata, blob_store), DownloadTokens(keys.layer_download), clock
        ),
        uploads=uploads,
        identities=identities,
        registry_settings=registry_settings,
        login_tokens=login_tokens,
        addresses=addresses,
        authorizer=authorizer,
        registry_authenticator=registry_authenticator,
        api_authenticator=api_authenticator,
    )


REGISTRY = web.AppKey("moorage.registry", Registry)

# The ECR API operations served, one module per group.
ECR_OPERATION_MODULES = (
    repository_operations,
    policy_operations,
    registry_operations,
    image_operations,
    layer_operations,
    lifecycle_operations,
    scanning_configuration_operations,
    scan_operations,
)


def build_web_app(
    registry: Registry,
    *,
    authenticator: Authenticator | None = None,
    authorizer: Authorizer | None = None,
    api_authenticator: ApiAuthenticator | None = None,
) -> web.Application:
    """The HTTP application: ``/v2/`` (with its token endpoint), the ECR API on ``POST /``,
    ``/healthz``, and in emulator mode ``/_moorage/reset``.

    The doors default to the registry's own (IAM, or emulator mode's); tests of one protocol
    may pass others.
    """
    app = web.Application(middlewares=list(oci.MIDDLEWARES))
    app[REGISTRY] = registry
    app[REFUSAL_THROTTLE] = RefusalThrottle(
        burst=registry.settings.refusal_burst, rate=registry.settings.refusal_rate
    )
    authorizer = authorizer or registry.authorizer
    oci.mount(
        app,
        OciServices(
            repositories=registry.repositories,
            images=registry.images,
            blobs=registry.blobs,
            uploads=registry.uploads,
            authenticator=authenticator or registry.registry_authenticator,
            authorizer=authorizer,
            addresses=registry.addresses,
        ),
    )
    ecr_api.mount(
        app,
        operations=OperationTable[Registry].from_modules(*ECR_OPERATION_MODULES),
        authenticator=api_authenticator or registry.api_authenticator,
        authorizer=authorizer,
        services=registry,
        region=registry.settings.region,
    )
    downloads.mount(app, registry.layer_downloads)
    if registry.settings.emulator:
        emulator.mount(app, registry.wipe)
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
