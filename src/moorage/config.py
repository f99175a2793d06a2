"""Typed settings, read from defaults < TOML config file < environment < command line.

Every setting has a TOML key (its field name) and an environment variable
(``MOORAGE_`` + the upper-cased field name), listed next to it below.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from moorage.domain.regions import DEFAULT_REGION, aws_regions, is_region

ENV_PREFIX = "MOORAGE_"
EVENT_LOOPS = ("asyncio", "uvloop")


class ConfigError(Exception):
    """A setting is unknown or has a value of the wrong type; the message is one line."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"  # MOORAGE_HOST
    port: int = 5000  # MOORAGE_PORT
    data_dir: Path = Path("moorage-data")  # MOORAGE_DATA_DIR
    # Default: SQLite in data_dir. PostgreSQL: postgresql+asyncpg://user@host:5432/db
    database_url: str | None = None  # MOORAGE_DATABASE_URL
    blob_store: str = "filesystem"  # MOORAGE_BLOB_STORE: filesystem | memory
    tls_cert: Path | None = None  # MOORAGE_TLS_CERT
    tls_key: Path | None = None  # MOORAGE_TLS_KEY
    # Repository-name patterns ('team-*', '*') whose repositories a push creates.
    # In the environment: comma-separated.
    create_on_push: tuple[str, ...] = ()  # MOORAGE_CREATE_ON_PUSH
    # The default account: `moorage admin init` creates it, `moorage repo` commands act in it,
    # and emulator mode runs as it.
    registry_id: str = "123456789012"  # MOORAGE_REGISTRY_ID
    # The deployment's region: in ARNs, and the SigV4 scope clients sign for. MOORAGE_REGION.
    region: str = DEFAULT_REGION
    # Other regions it serves (every (account, region) is a registry of its own); a request
    # signed for one acts in it. Emulator mode serves every AWS region too. MOORAGE_REGIONS,
    # comma-separated.
    regions: tuple[str, ...] = ()
    # Other deployments, for replication destinations in regions this one does not serve:
    # "REGION=URL" each (docs/replication.md); "NAME=oci+https://[user:password@]host" names
    # any OCI registry as the destination region NAME. MOORAGE_REPLICATION_PEERS,
    # comma-separated. Not in reprs: an OCI destination's URL may carry its password.
    replication_peers: tuple[str, ...] = field(default=(), repr=False)
    # The replication public keys (`moorage replication public-key` on each) of the
    # deployments allowed to replicate into this one. MOORAGE_REPLICATION_TRUSTED_KEYS.
    replication_trusted_keys: tuple[str, ...] = ()
    # How repositoryUri and proxyEndpoint name this server: a host[:port] with optional
    # {registry_id} and {region} placeholders ('{registry_id}.dkr.ecr.{region}.example.com').
    # Default: the address the server listens on. With {registry_id}, the Host header of a
    # /v2/ request selects the account, so several accounts share one server.
    registry_host: str | None = None  # MOORAGE_REGISTRY_HOST
    # The host[:port] of public images' addresses (ECR Public's public.ecr.aws): the
    # repositoryUri of a public repository is <public_host>/<alias>/<name>. Default: the
    # host the client reached the API at.
    public_host: str | None = None  # MOORAGE_PUBLIC_HOST
    # The port of the public address (anonymous pulls of public images, /v2/<alias>/<repo>;
    # protocols/oci/public_address.py), on the same host as port. None: not served.
    public_port: int | None = None  # MOORAGE_PUBLIC_PORT
    # Pulls (manifest reads) a second, and the burst allowed above that, at the public
    # address: anonymous ones per client address (ECR Public: 1 a second), logged-in ones
    # per account (ECR Public: 10). A rate of 0 turns the limit off.
    public_pull_rate: float = 1.0  # MOORAGE_PUBLIC_PULL_RATE
    public_pull_burst: float = 10.0  # MOORAGE_PUBLIC_PULL_BURST
    public_authenticated_pull_rate: float = 10.0  # MOORAGE_PUBLIC_AUTHENTICATED_PULL_RATE
    public_authenticated_pull_burst: float = 100.0  # MOORAGE_PUBLIC_AUTHENTICATED_PULL_BURST
    # Key that encrypts access-key secrets at rest and signs login tokens: 32 bytes, urlsafe
    # base64. Default: read from data_dir/master.key, which the first start creates (0600).
    master_key: str | None = field(default=None, repr=False)  # MOORAGE_MASTER_KEY
    # Emulator mode, for testing AWS code: any access key and signature is accepted as
    # emulator_account, /v2/ is open to anonymous callers as that account, and
    # POST /_moorage/reset wipes all state. Loopback only unless emulator_allow_remote.
    emulator: bool = False  # MOORAGE_EMULATOR
    emulator_account: str | None = None  # MOORAGE_EMULATOR_ACCOUNT: default registry_id
    emulator_allow_remote: bool = False  # MOORAGE_EMULATOR_ALLOW_REMOTE
    # Emulator mode accepts fixture images (manifests whose blobs were never pushed) unless
    # strict, which answers LayersNotFoundException as AWS does. MOORAGE_EMULATOR_STRICT.
    emulator_strict: bool = False
    log_level: str = "info"  # MOORAGE_LOG_LEVEL
    access_log: bool = True  # MOORAGE_ACCESS_LOG
    shutdown_timeout: float = 30.0  # MOORAGE_SHUTDOWN_TIMEOUT: seconds for in-flight requests
    # Upload bodies written at once; more are answered 429 TOOMANYREQUESTS (retry shortly).
    # One account, or one client address, may hold only part of them, so that slow uploads
    # from one cannot lock out the others.
    max_concurrent_uploads: int = 256  # MOORAGE_MAX_CONCURRENT_UPLOADS
    max_uploads_per_account: int = 64  # MOORAGE_MAX_UPLOADS_PER_ACCOUNT
    max_uploads_per_client: int = 32  # MOORAGE_MAX_UPLOADS_PER_CLIENT: per client IP address
    # Connection budget (protocols/connections.py), in seconds as nginx's settings of the same
    # job: from a request's first byte to the end of its headers; a connection without a
    # request; between two reads of a request body. And the number of open connections
    # (also kept under the process's open-file limit).
    header_timeout: float = 60.0  # MOORAGE_HEADER_TIMEOUT
    idle_timeout: float = 75.0  # MOORAGE_IDLE_TIMEOUT
    body_timeout: float = 60.0  # MOORAGE_BODY_TIMEOUT
    max_connections: int = 4096  # MOORAGE_MAX_CONNECTIONS
    # A client address refused for its credentials more than refusal_burst times, beyond
    # refusal_rate a second, waits a second for each further refusal (docs/hardening.md).
    refusal_burst: int = 20  # MOORAGE_REFUSAL_BURST
    refusal_rate: float = 10.0  # MOORAGE_REFUSAL_RATE
    # uvloop answers small requests faster and, in our benchmark, pulls faster too; asyncio's
    # own loop sends blobs with sendfile, at about half the server CPU per byte pulled.
    # See docs/benchmarks.md for the measurements.
    event_loop: str = "uvloop"  # MOORAGE_EVENT_LOOP: uvloop | asyncio
    # Run background jobs (lifecycle, garbage collection) inside `moorage serve`. Off: run
    # `moorage worker` instead (on PostgreSQL, as many as you like; on SQLite, one process).
    workers: bool = True  # MOORAGE_WORKERS
    # How long a worker holds a job without renewing its lease; a crashed worker's job runs
    # again this long after its last heartbeat (every third of it).
    job_lease_seconds: float = 60.0  # MOORAGE_JOB_LEASE_SECONDS
    # Seconds between scheduled lifecycle runs over every repository with a policy (ECR acts
    # "within 24 hours"); 0 schedules none (`moorage lifecycle run` still works).
    lifecycle_interval: float = 86400.0  # MOORAGE_LIFECYCLE_INTERVAL
    # Seconds between scheduled garbage collections (docs/gc.md); 0 schedules none
    # (`moorage gc` still works).
    gc_interval: float = 86400.0  # MOORAGE_GC_INTERVAL
    # Seconds a pull-through cache serves a cached tag before it checks the upstream again
    # (ECR: at least once every 24 hours); digests never go upstream once cached.
    cache_refresh_interval: float = 86400.0  # MOORAGE_CACHE_REFRESH_INTERVAL
    config: Path | None = field(default=None, compare=False)  # MOORAGE_CONFIG

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'moorage.db').resolve()}"

    @property
    def served_regions(self) -> frozenset[str]:
        """The regions requests may act in: ``region`` and ``regions``, and in emulator mode
        every region AWS has (its commercial partition, as botocore lists it)."""
        configured = frozenset((self.region, *self.regions))
        return configured | aws_regions() if self.emulator else configured

    @property
    def peer_endpoints(self) -> dict[str, str]:
        """Region -> base URL of the deployment serving it (``replication_peers``)."""
        peers = {}
        for entry in self.replication_peers:
            region, _, url = entry.partition("=")
            peers[region.strip()] = url.strip().rstrip("/")
        return peers

    @property
    def fixture_images(self) -> bool:
        """Whether manifests may reference blobs never pushed (emulator mode, not strict)."""
        return self.emulator and not self.emulator_strict

    @property
    def emulator_registry_id(self) -> str:
        """The account emulator mode runs as."""
        return self.emulator_account or self.registry_id

    def validate(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        for key in ("registry_id", "emulator_account"):
            value = getattr(self, key)
            if value is not None and not (len(value) == 12 and value.isdigit()):
                raise ConfigError(f"{key} must be 12 digits")
        for name in (self.region, *self.regions):
            if not is_region(name):
                raise ConfigError(f"{name!r} is not an AWS region name, such as us-east-1")
        if self.emulator and not self.emulator_allow_remote and not _is_loopback(self.host):
            raise ConfigError(
                f"emulator mode accepts any credentials; it binds to loopback only, not "
                f"{self.host} (set emulator_allow_remote to override)"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError("port must be between 0 and 65535")
        if self.public_port is not None and not 0 <= self.public_port <= 65535:
            raise ConfigError("public_port must be between 0 and 65535")
        if self.public_port is not None and self.public_port == self.port != 0:
            raise ConfigError("public_port must differ from port")
        for key in (
            "public_pull_rate",
            "public_pull_burst",
            "public_authenticated_pull_rate",
            "public_authenticated_pull_burst",
        ):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be 0 or more")
        for key in (
            "max_concurrent_uploads",
            "max_uploads_per_account",
            "max_uploads_per_client",
            "max_connections",
            "refusal_burst",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1")
        for key in ("header_timeout", "idle_timeout", "body_timeout", "refusal_rate"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be a positive number of seconds")
        if self.job_lease_seconds < 1:
            raise ConfigError("job_lease_seconds must be at least 1")
        if self.lifecycle_interval < 0:
            raise ConfigError("lifecycle_interval must be 0 (off) or a number of seconds")
        if self.gc_interval < 0:
            raise ConfigError("gc_interval must be 0 (off) or a number of seconds")
        if self.cache_refresh_interval < 0:
            raise ConfigError("cache_refresh_interval must be a number of seconds")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
        for entry in self.replication_peers:
            region, equals, url = (part.strip() for part in entry.partition("="))
            oci = url.startswith(("oci+http://", "oci+https://"))
            named = _DESTINATION_NAME.fullmatch(region) if oci else is_region(region)
            if not equals or not named or not (oci or url.startswith(("http://", "https://"))):
                # Never the entry itself: an OCI destination's URL may hold a password.
                raise ConfigError(
                    f"replication peer {region!r} must be REGION=URL (eu-west-1=https://host) "
                    "or NAME=oci+https://host for another OCI registry"
                )
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Merge the sources. ``overrides`` are command-line values (None means "not given").

    Raises ConfigError with a one-line message.
    """
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, ())}
    from_env = {
        f.name: _convert(f.name, environ[env_name(f.name)])
        for f in fields(Settings)
        if env_name(f.name) in environ
    }
    config_path = overrides.get("config") or from_env.get("config")
    from_file = _read_file(Path(config_path)) if config_path else {}
    merged: dict[str, Any] = {**from_file, **from_env, **overrides}
    return replace(Settings(), **{k: _coerce(k, v) for k, v in merged.items()}).validate()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = {f.name for f in fields(Settings)} - {"config"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}")
    return document


_TYPES: dict[str, type] = {
    "port": int,
    "public_port": int,
    "public_pull_rate": float,
    "public_pull_burst": float,
    "public_authenticated_pull_rate": float,
    "public_authenticated_pull_burst": float,
    "max_concurrent_uploads": int,
    "max_uploads_per_account": int,
    "max_uploads_per_client": int,
    "max_connections": int,
    "refusal_burst": int,
    "refusal_rate": float,
    "header_timeout": float,
    "idle_timeout": float,
    "body_timeout": float,
    "data_dir": Path,
    "tls_cert": Path,
    "tls_key": Path,
    "config": Path,
    "access_log": bool,
    "emulator": bool,
    "emulator_allow_remote": bool,
    "emulator_strict": bool,
    "shutdown_timeout": float,
    "lifecycle_interval": float,
    "gc_interval": float,
    "cache_refresh_interval": float,
    "workers": bool,
    "job_lease_seconds": float,
    "create_on_push": tuple,
    "regions": tuple,
    "replication_peers": tuple,
    "replication_trusted_keys": tuple,
}


# A replication destination's region, as ECR's model takes it (ReplicationDestination.region).
_DESTINATION_NAME = re.compile(r"[0-9a-z-]{2,25}")


def _convert(key: str, text: str) -> Any:
    """An environment variable's text to the setting's type."""
    kind = _TYPES.get(key, str)
    if kind is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
            raise ConfigError(f"{env_name(key)} must be true or false")
        return lowered in {"1", "true", "yes", "on"}
    return text


def _coerce(key: str, value: Any) -> Any:
    if key not in {f.name for f in fields(Settings)}:
        raise ConfigError(f"unknown setting {key!r}")
    kind = _TYPES.get(key, str)
    try:
        if kind is tuple:
            if isinstance(value, str):
                return (value,)
            return tuple(str(v) for v in value)
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is int and isinstance(value, bool):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {key!r} has an invalid value {value!r}") from None
