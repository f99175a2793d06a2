"""Composition root: read settings, build adapters, wire services, mount the protocols."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from aiohttp import web

from moorage.clients.oci import BasicCredentials, OciRegistryClient
from moorage.config import Settings
from moorage.domain.addresses import RegistryAddresses
from moorage.domain.public import PUBLIC_API_REGION, PUBLIC_NAMESPACE
from moorage.domain.replication import Destination
from moorage.iam.actions import public_repository_arn
from moorage.iam.download_tokens import DownloadTokens
from moorage.iam.login_tokens import LoginTokens
from moorage.iam.replica_tokens import LIFETIME as REPLICA_TOKEN_LIFETIME
from moorage.iam.replica_tokens import ReplicaClaims, ReplicaTokenSigner, ReplicaTokenVerifier
from moorage.iam.secrets import KeyRing, MasterKey, load_master_key
from moorage.ports.access import Authenticator, Authorizer
from moorage.ports.blobs import BlobStore
from moorage.ports.clock import system_clock
from moorage.ports.metadata import MetadataStore
from moorage.ports.upstream import RegistryPusher
from moorage.protocols import downloads, emulator
from moorage.protocols.aws import app as aws_api
from moorage.protocols.aws.auth import ApiAuthenticator
from moorage.protocols.aws.ecr.operations import creation_templates as template_operations
from moorage.protocols.aws.ecr.operations import images as image_operations
from moorage.protocols.aws.ecr.operations import layers as layer_operations
from moorage.protocols.aws.ecr.operations import lifecycle as lifecycle_operations
from moorage.protocols.aws.ecr.operations import policies as policy_operations
from moorage.protocols.aws.ecr.operations import pull_through_cache as cache_operations
from moorage.protocols.aws.ecr.operations import registry as registry_operations
from moorage.protocols.aws.ecr.operations import replication as replication_operations
from moorage.protocols.aws.ecr.operations import repositories as repository_operations
from moorage.protocols.aws.ecr.operations import (
    scanning_configuration as scanning_configuration_operations,
)
from moorage.protocols.aws.ecr.operations import scans as scan_operations
from moorage.protocols.aws.ecr_public import errors as public_errors
from moorage.protocols.aws.ecr_public import operations as public_operations
from moorage.protocols.aws.operations import OperationTable
from moorage.protocols.aws.resources import ECR_PUBLIC
from moorage.protocols.aws.secretsmanager import errors as secret_errors
from moorage.protocols.aws.secretsmanager import operations as secret_operations
from moorage.protocols.connections import REFUSAL_THROTTLE, RefusalThrottle
from moorage.protocols.oci import app as oci
from moorage.protocols.oci.context import OciServices
from moorage.protocols.oci.public_address import (
    PublicAddressAuthenticator,
    PublicAddressAuthorizer,
    PublicNames,
    PullRates,
)
from moorage.protocols.web import gallery
from moorage.services.access import EmulatorAuthenticator
from moorage.services.authentication import (
    ApiKeyAuthenticator,
    EmulatorApiAuthenticator,
    RegistryAuthenticator,
)
from moorage.services.authorization import PolicyAuthorizer, StoredPolicies
from moorage.services.backfill import BackfillService
from moorage.services.blobs import BlobService
from moorage.services.creation_templates import CreationTemplateService
from moorage.services.downloads import LayerDownloadService
from moorage.services.gallery import GalleryService
from moorage.services.identities import IdentityService
from moorage.services.image_scanner import ImageScanner
from moorage.services.images import ImageService
from moorage.services.lifecycle import LifecycleService
from moorage.services.public import PublicRegistryService, PublicSite
from moorage.services.pull_through_cache import CacheRuleService, PullThroughCache
from moorage.services.registry import RegistryService
from moorage.services.replication import LocalSite, RemoteSite, ReplicationService
from moorage.services.repositories import RepositoryService
from moorage.services.scanning import ScanService
from moorage.services.secrets import SecretsService
from moorage.services.uploads import UploadService
from moorage.services.write_slots import WriteLimits, WriteSlots
from moorage.storage.blobs import build_blob_store
from moorage.storage.metadata.sql.store import open_sql_metadata_store

log = logging.getLogger("moorage")


# Each region served costs a set of service objects, built on its first request; their
# number is bounded (emulator mode serves AWS's commercial regions, fewer than 40).
MAX_REGIONS = 64


class RegionNotServed(Exception):
    """A region this deployment does not serve, or one past MAX_REGIONS."""


class _Peers:
    """The other deployments replicas go to (``settings.peer_endpoints``), each reached over
    ``/v2/`` with a replication token this deployment signs (iam/replica_tokens.py)."""

    def __init__(self, settings: Settings, signer: ReplicaTokenSigner) -> None:
        self._endpoints = settings.peer_endpoints
        self._signer = signer
        self._source_region = settings.region

    def __call__(self, region: str) -> RemoteSite | None:
        url = self._endpoints.get(region)
        if url is None:
            return None
        if url.startswith("oci+"):
            return _oci_site(url.removeprefix("oci+"))
        return RemoteSite(url, lambda source, destination: self._pusher(url, source, destination))

    def _pusher(self, url: str, source: str, destination: Destination) -> RegistryPusher:
        def token() -> str:
            return self._signer.issue(
                ReplicaClaims(
                    source_account=source,
                    destination_account=destination.registry_id,
                    destination_region=destination.region,
                    source_region=self._source_region,
                    expires=system_clock() + REPLICA_TOKEN_LIFETIME,
                )
            )

        return OciRegistryClient(url, bearer=token)


def _oci_site(url: str) -> RemoteSite:
    """Another OCI registry as a destination region (beyond ECR, as Harbor replicates): the
    same pushes, logged in with the URL's user and password when it has them (the registry's
    own challenge says how), never with a replication token."""
    parts = urlsplit(url)
    credentials = None
    if parts.username is not None:
        credentials = BasicCredentials(unquote(parts.username), unquote(parts.password or ""))
    host = parts.hostname or ""
    base = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
    return RemoteSite(base, lambda source, destination: OciRegistryClient(base, credentials))


class _Sites:
    """Where replicas are written: each region this deployment serves (``home`` is set once
    the deployment's own registry is built)."""

    def __init__(self) -> None:
        self.home: Registry | None = None

    def __call__(self, region: str) -> LocalSite | None:
        regional = None if self.home is None else self.home.serving(region)
        return None if regional is None else regional.replica_site()


def _wire_public(
    settings: Settings, metadata: MetadataStore, blob_store: BlobStore, shared: _Shared
) -> PublicSite:
    clock = system_clock
    repositories = RepositoryService(metadata, clock)
    authorizer = PolicyAuthorizer(
        StoredPolicies(shared.identities, RegistryService(metadata, clock)),
        clock,
        PUBLIC_API_REGION,
        repository_arn=public_repository_arn,
    )
    return PublicSite(
        metadata=metadata,
        repositories=repositories,
        images=ImageService(metadata, repositories, clock, fixture_images=settings.fixture_images),
        uploads=UploadService(metadata, blob_store, repositories, clock, slots=shared.write_slots),
        blobs=BlobService(metadata, blob_store),
        catalog=PublicRegistryService(metadata, repositories, clock),
        authorizer=authorizer,
        login_tokens=shared.login_tokens,
        public_host=settings.public_host,
        public_port=settings.public_port,
    )


@dataclass(frozen=True)
class _Shared:
    """What every region's services share: keys, the upload slots (one budget per process),
    login tokens and the authenticators (identities are global, as IAM is), and the store
    they were all opened on (each region's is a view of it; closing the registry closes it)."""

    root_metadata: MetadataStore
    keys: KeyRing
    identities: IdentityService
    write_slots: WriteSlots
    login_tokens: LoginTokens
    registry_authenticator: Authenticator
    api_authenticator: ApiAuthenticator
    # The same keys, for requests signed for Secrets Manager (signing name secretsmanager).
    secrets_authenticator: ApiAuthenticator
    # ... and for ECR Public (signing name ecr-public; a global service: any region).
    public_authenticator: ApiAuthenticator
    sites: _Sites
    peers: _Peers


@dataclass
class Registry:
    """The wired application: storage adapters, the services built on them, and the doors
    (authenticators, authorizer) every protocol goes through.

    It acts in ``settings.region``; :meth:`in_region` gives the same registry acting in
    another region (on AWS every (account, region) is a registry of its own), sharing the
    storage adapters and the doors.
    """

    settings: Settings
    metadata: MetadataStore
    blob_store: BlobStore
    repositories: RepositoryService
    images: ImageService
    lifecycle: LifecycleService
    scanning: ScanService
    replication: ReplicationService
    backfills: BackfillService
    cache_rules: CacheRuleService
    cache: PullThroughCache
    creation_templates: CreationTemplateService
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
    secrets_authenticator: ApiAuthenticator
    secrets: SecretsService
    _shared: _Shared = field(repr=False, compare=False)
    # The registry of the deployment's region, and the others it built (they refer back).
    _home: Registry | None = field(default=None, repr=False, compare=False)
    _regions: dict[str, Registry] = field(default_factory=dict, repr=False, compare=False)
    _public: PublicSite | None = field(default=None, repr=False, compare=False)

    @property
    def region(self) -> str:
        return self.settings.region

    def in_region(self, region: str) -> Registry:
        """This registry acting in ``region``. Raises RegionNotServed for a region the
        deployment does not serve (``settings.served_regions``), or past MAX_REGIONS."""
        home = self._home or self
        if region == home.region:
            return home
        found = home._regions.get(region)
        if found is not None:
            return found
        if region not in home.settings.served_regions:
            raise RegionNotServed(f"this registry does not serve the region {region!r}")
        if len(home._regions) >= MAX_REGIONS:
            raise RegionNotServed(f"this registry serves at most {MAX_REGIONS} regions")
        found = _wire_region(
            replace(home.settings, region=region),
            home.metadata.in_region(region),
            home.blob_store,
            home._shared,
        )
        found._home = home
        home._regions[region] = found
        return found

    @property
    def public(self) -> PublicSite:
        """The accounts' public registries (ECR Public), built on first use."""
        home = self._home or self
        if home._public is None:
            home._public = _wire_public(
                home.settings,
                home._shared.root_metadata.in_region(PUBLIC_NAMESPACE),
                home.blob_store,
                home._shared,
            )
        return home._public

    def replica_site(self) -> LocalSite:
        """This registry as a replication destination."""
        return LocalSite(
            self.region, self.metadata, self.repositories, self.images, self.authorizer
        )

    def serving(self, region: str) -> Registry | None:
        """:meth:`in_region`, or None when the region is not served."""
        try:
            return self.in_region(region)
        except RegionNotServed:
            return None

    async def regions_in_use(self) -> list[str]:
        """The regions that have repositories (the deployment's own when none has)."""
        async with self.metadata.read() as tx:
            return await tx.regions_in_use() or [self.region]

    def regions_served(self) -> list[Registry]:
        """This registry in each region it has served so far, its own first."""
        home = self._home or self
        return [home, *home._regions.values()]

    async def close(self) -> None:
        for regional in self.regions_served():
            await regional.images.close()
            await regional.cache.close()
        if self._public is not None:
            await self._public.images.close()
        await self.blob_store.close()
        await self._shared.root_metadata.close()

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
    metadata = await open_sql_metadata_store(settings.resolved_database_url, region=settings.region)
    blob_store = build_blob_store(settings.blob_store, root=settings.data_dir)
    return wire(settings, metadata, blob_store, keys)


def wire(
    settings: Settings,
    metadata: MetadataStore,
    blob_store: BlobStore,
    keys: KeyRing | None = None,
) -> Registry:
    """Build the services, acting in ``settings.region``. Without ``keys`` a fresh master key
    is made up: login tokens and stored secrets then last as long as this object (tests)."""
    clock = system_clock
    keys = keys or KeyRing.derive(MasterKey.generate())
    root_metadata, metadata = metadata, metadata.in_region(settings.region)
    login_tokens = LoginTokens(keys.registry_login)
    registry_authenticator: Authenticator
    api_authenticator: ApiAuthenticator
    secrets_authenticator: ApiAuthenticator
    public_authenticator: ApiAuthenticator
    if settings.emulator:
        registry_authenticator = EmulatorAuthenticator(settings.emulator_registry_id)
        api_authenticator = EmulatorApiAuthenticator(settings.emulator_registry_id)
        secrets_authenticator = public_authenticator = api_authenticator
    else:
        registry_authenticator = RegistryAuthenticator(
            metadata,
            login_tokens,
            clock,
            replicas=ReplicaTokenVerifier(settings.replication_trusted_keys),
            regions=settings.served_regions,
        )
        api_authenticator, secrets_authenticator = (
            ApiKeyAuthenticator(
                metadata,
                keys.access_key_secrets,
                clock,
                regions=settings.served_regions,
                service=service,
            )
            for service in ("ecr", "secretsmanager")
        )
        public_authenticator = ApiKeyAuthenticator(
            metadata, keys.access_key_secrets, clock, regions=None, service="ecr-public"
        )
    write_slots = WriteSlots(
        WriteLimits(
            total=settings.max_concurrent_uploads,
            per_account=settings.max_uploads_per_account,
            per_client=settings.max_uploads_per_client,
        )
    )
    shared = _Shared(
        root_metadata,
        keys,
        IdentityService(metadata, keys.access_key_secrets, clock),
        write_slots,
        login_tokens,
        registry_authenticator,
        api_authenticator,
        secrets_authenticator,
        public_authenticator,
        _Sites(),
        _Peers(settings, ReplicaTokenSigner(keys.replication_seed)),
    )
    home = _wire_region(settings, metadata, blob_store, shared)
    shared.sites.home = home
    return home


def _wire_region(
    settings: Settings, metadata: MetadataStore, blob_store: BlobStore, shared: _Shared
) -> Registry:
    """The services of one region (``settings.region``, which ``metadata`` acts in)."""
    clock = system_clock
    keys = shared.keys
    repositories = RepositoryService(metadata, clock, settings.create_on_push)
    identities = shared.identities
    registry_settings = RegistryService(metadata, clock)
    authorizer = PolicyAuthorizer(
        StoredPolicies(identities, registry_settings), clock, settings.region
    )
    images = ImageService(metadata, repositories, clock, fixture_images=settings.fixture_images)
    uploads = UploadService(metadata, blob_store, repositories, clock, slots=shared.write_slots)
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
    replication = ReplicationService(
        metadata,
        images,
        clock,
        region=settings.region,
        site=shared.sites,
        remote=shared.peers,
        blob_store=blob_store,
    )
    images.add_push_hook(replication.on_push)
    images.add_delete_hook(replication.on_delete)
    assert keys.secret_values is not None  # KeyRing.derive makes it
    secrets = SecretsService(metadata, keys.secret_values, clock, region=settings.region)
    cache = PullThroughCache(
        metadata,
        blob_store,
        repositories,
        images,
        clock,
        refresh_interval=timedelta(seconds=settings.cache_refresh_interval),
        credentials=secrets.credentials,
    )
    return Registry(
        settings=settings,
        metadata=metadata,
        blob_store=blob_store,
        repositories=repositories,
        images=images,
        lifecycle=LifecycleService(metadata, images, clock),
        scanning=scanning,
        replication=replication,
        backfills=BackfillService(metadata, images, replication, clock, region=settings.region),
        cache_rules=CacheRuleService(
            metadata, clock, credentials=secrets.credentials, on_change=cache.forget_rules
        ),
        cache=cache,
        creation_templates=CreationTemplateService(metadata, clock),
        blobs=BlobService(metadata, blob_store),
        layer_downloads=LayerDownloadService(
            metadata, BlobService(metadata, blob_store), DownloadTokens(keys.layer_download), clock
        ),
        uploads=uploads,
        identities=identities,
        registry_settings=registry_settings,
        login_tokens=shared.login_tokens,
        addresses=addresses,
        authorizer=authorizer,
        registry_authenticator=shared.registry_authenticator,
        api_authenticator=shared.api_authenticator,
        secrets_authenticator=shared.secrets_authenticator,
        secrets=secrets,
        _shared=shared,
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
    replication_operations,
    cache_operations,
    template_operations,
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
    custom = authorizer is not None
    authorizer = authorizer or registry.authorizer
    registry_authenticator = authenticator or registry.registry_authenticator
    regional_oci: dict[str, OciServices] = {}

    def oci_services(
        regional: Registry, in_region: Callable[[str], OciServices | None] | None = None
    ) -> OciServices:
        return OciServices(
            repositories=regional.repositories,
            images=regional.images,
            blobs=regional.blobs,
            uploads=regional.uploads,
            authenticator=registry_authenticator,
            authorizer=authorizer if custom else regional.authorizer,
            addresses=regional.addresses,
            cache=regional.cache,
            in_region=in_region,
        )

    def oci_in_region(region: str) -> OciServices | None:
        """Another region's /v2/ services (a host naming it), built once; bounded as
        Registry.in_region is."""
        found = regional_oci.get(region)
        if found is None:
            regional = registry.serving(region)
            if regional is None:
                return None
            found = regional_oci[region] = oci_services(regional)
        return found

    oci.mount(app, oci_services(registry, oci_in_region))
    aws_api.mount(
        app,
        operations=OperationTable[Registry].from_modules(*ECR_OPERATION_MODULES),
        authenticator=api_authenticator or registry.api_authenticator,
        authorizer=authorizer,
        services=registry,
        region=registry.settings.region,
        # Another region's services and authorizer (whose ARNs name that region); a test's
        # own authorizer serves every region.
        in_region=lambda region: _regional(registry, region, authorizer if custom else None),
    )
    aws_api.mount(
        app,
        operations=OperationTable[SecretsService].from_modules(
            secret_operations, service="secretsmanager"
        ),
        authenticator=registry.secrets_authenticator,
        authorizer=authorizer,
        services=registry.secrets,
        region=registry.settings.region,
        in_region=lambda region: _regional_secrets(
            registry, region, authorizer if custom else None
        ),
        errors=secret_errors.DOMAIN_ERRORS,
        handlers_authorize=True,
    )
    public = registry.public
    aws_api.mount(
        app,
        operations=OperationTable[PublicSite].from_modules(public_operations, service="ecr-public"),
        authenticator=registry._shared.public_authenticator,
        authorizer=authorizer if custom else public.authorizer,
        services=public,
        region=PUBLIC_API_REGION,
        errors=public_errors.DOMAIN_ERRORS,
        naming=ECR_PUBLIC,
        unsupported_code=public_errors.UNSUPPORTED_COMMAND,
        registry_of=lambda site, id_or_alias: site.catalog.registry_of(id_or_alias),
    )
    downloads.mount(app, registry.layer_downloads)
    gallery.mount(app, GalleryService(public.metadata, registry.blob_store), public)
    if registry.settings.emulator:
        emulator.mount(app, registry.wipe)
    app.router.add_get("/healthz", healthz)
    return app


def _regional(
    registry: Registry, region: str, authorizer: Authorizer | None
) -> tuple[Registry, Authorizer] | None:
    """The registry's services and authorizer in ``region``; None when it is not served."""
    regional = registry.serving(region)
    return None if regional is None else (regional, authorizer or regional.authorizer)


def _regional_secrets(
    registry: Registry, region: str, authorizer: Authorizer | None
) -> tuple[SecretsService, Authorizer] | None:
    regional = registry.serving(region)
    return None if regional is None else (regional.secrets, authorizer or regional.authorizer)


def build_public_app(registry: Registry) -> web.Application:
    """The public address's application (``protocols/oci/public_address.py``): ``/v2/``
    over the public registries alone, with anonymous pulls at the configured rates, its
    token endpoint, and ``/healthz``."""
    settings = registry.settings
    public = registry.public
    app = web.Application(middlewares=list(oci.MIDDLEWARES))
    app[REGISTRY] = registry
    app[REFUSAL_THROTTLE] = RefusalThrottle(
        burst=settings.refusal_burst, rate=settings.refusal_rate
    )
    rates = PullRates(
        anonymous_rate=settings.public_pull_rate,
        anonymous_burst=settings.public_pull_burst,
        authenticated_rate=settings.public_authenticated_pull_rate,
        authenticated_burst=settings.public_authenticated_pull_burst,
    )
    oci.mount(
        app,
        OciServices(
            repositories=public.repositories,
            images=public.images,
            blobs=public.blobs,
            uploads=public.uploads,
            authenticator=PublicAddressAuthenticator(registry.registry_authenticator),
            authorizer=PublicAddressAuthorizer(public.authorizer, rates),
            path_names=PublicNames(public.catalog),
            anonymous_tokens=True,
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
