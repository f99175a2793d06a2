"""The ``moorage`` command: ``serve``, ``repo create|list|delete``, ``migrate``, ``admin``, ``gc``.

Every ``serve`` option can also be set in a TOML config file (``--config``) and as a
``MOORAGE_<NAME>`` environment variable; the command line wins, then the environment,
then the file. Failures print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from moorage.config import ConfigError, Settings, load_settings
from moorage.domain.errors import RegistryError

if TYPE_CHECKING:
    from moorage.app import Registry

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def storage_options(command: F) -> F:
    """Options every command that opens the registry's storage takes."""
    for option in reversed(
        [
            click.option("--config", type=click.Path(path_type=Path), help="TOML config file."),
            click.option(
                "--data-dir", type=click.Path(path_type=Path), help="Data folder [moorage-data]."
            ),
            click.option("--database-url", help="SQLAlchemy URL [SQLite in the data folder]."),
        ]
    ):
        command = option(command)
    return command


def settings_from(options: dict[str, Any]) -> Settings:
    """The settings of a command that opens storage; a bad one (including a metadata
    database URL this store does not support) fails here, before any work starts."""
    from moorage.storage.metadata.sql.engine import check_database_url

    try:
        settings = load_settings(options)
        check_database_url(settings.resolved_database_url)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    return settings


def fail(message: str) -> NoReturn:
    click.echo(f"moorage: error: {message}", err=True)
    sys.exit(2)


def run_async(work: Awaitable[T]) -> T:
    """Run ``work``; a domain error or an unreachable metadata database fails in one line."""
    from moorage.storage.metadata.sql.engine import DatabaseUnavailable

    try:
        return asyncio.run(work)  # type: ignore[arg-type]
    except RegistryError as exc:
        fail(exc.message)
    except DatabaseUnavailable as exc:
        fail(str(exc))


@click.group()
@click.version_option(package_name="moorage")
def main() -> None:
    """moorage: a self-hosted container registry that behaves like Amazon ECR."""


@main.command()
@click.option("--host", help="Address to listen on [127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [5000].")
@storage_options
@click.option("--tls-cert", type=click.Path(path_type=Path), help="PEM certificate chain.")
@click.option("--tls-key", type=click.Path(path_type=Path), help="PEM private key.")
@click.option(
    "--create-on-push",
    multiple=True,
    metavar="PATTERN",
    help="Create missing repositories whose name matches PATTERN on push ('team-*', '*').",
)
@click.option(
    "--registry-host",
    metavar="TEMPLATE",
    help="Registry host in repository URIs: host[:port] with optional {registry_id} and "
    "{region}; with {registry_id} the Host header selects the account [the server's address].",
)
@click.option("--region", help="AWS region in ARNs and signatures [us-east-1].")
@click.option(
    "--also-region",
    "regions",
    multiple=True,
    metavar="REGION",
    help="Another region to serve (each region is a registry of its own); repeatable.",
)
@click.option(
    "--emulator",
    is_flag=True,
    default=None,
    help="Emulator mode for testing AWS code: any credentials, open /v2/, fixture images, "
    "POST /_moorage/reset (and moto's /moto-api/reset).",
)
@click.option("--emulator-account", metavar="ID", help="Emulator mode's account [123456789012].")
@click.option(
    "--emulator-strict",
    is_flag=True,
    default=None,
    help="Emulator mode, but a manifest's blobs must have been pushed (LayersNotFoundException "
    "as on AWS); implies --emulator.",
)
@click.option(
    "--emulator-allow-remote",
    is_flag=True,
    default=None,
    help="Let emulator mode listen on a non-loopback address.",
)
@click.option(
    "--no-workers",
    "workers",
    flag_value=False,
    default=None,
    help="Run no background jobs here (run `moorage worker` instead).",
)
@click.option(
    "--lifecycle-interval",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Seconds between scheduled lifecycle policy runs; 0: none [86400].",
)
@click.option(
    "--gc-interval",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Seconds between scheduled garbage collections; 0: none [86400].",
)
@click.option(
    "--replication-peer",
    "replication_peers",
    multiple=True,
    metavar="REGION=URL",
    help="The deployment serving REGION, for replication destinations there; repeatable.",
)
@click.option(
    "--replication-trusted-key",
    "replication_trusted_keys",
    multiple=True,
    metavar="KEY",
    help="A peer's replication public key: it may replicate into this one; repeatable.",
)
@click.option(
    "--cache-refresh-interval",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Seconds a pull-through cache serves a tag before checking its upstream [86400].",
)
@click.option(
    "--public-port",
    type=click.IntRange(0, 65535),
    help="Serve the public address (anonymous pulls of public repositories, "
    "<host>:<port>/<alias>/<repository>) on this port [not served].",
)
@click.option(
    "--public-host",
    metavar="HOST[:PORT]",
    help="The public address in public repository URIs [the host the client used].",
)
@click.option(
    "--public-pull-rate",
    type=click.FloatRange(min=0),
    metavar="PER_SECOND",
    help="Anonymous pulls a second per client address at the public address; 0: no limit [1].",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(**options: Any) -> None:
    """Run the registry."""
    from moorage.server import run
    from moorage.storage.metadata.sql.engine import DatabaseUnavailable

    if options.get("emulator_strict"):
        options["emulator"] = True
    settings = settings_from(options)
    _configure_logging(settings.log_level)
    try:
        run(settings)
    except DatabaseUnavailable as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot serve on {settings.host}:{settings.port}: {exc.strerror or exc}")


@main.command()
@storage_options
def migrate(**options: Any) -> None:
    """Bring the metadata database schema up to date."""
    from moorage.storage.metadata.migrate import upgrade_database

    settings = settings_from(options)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    run_async(upgrade_database(settings.resolved_database_url))
    click.echo("database is up to date")


@main.group()
def repo() -> None:
    """Manage repositories."""


@repo.command("create")
@click.argument("name")
@storage_options
def repo_create(name: str, **options: Any) -> None:
    """Create repository NAME."""

    async def create(registry: Registry) -> None:
        repository = await registry.repositories.create(registry.settings.registry_id, name)
        click.echo(repository.name)

    _with_registry(options, create)


@repo.command("list")
@storage_options
def repo_list(**options: Any) -> None:
    """List repositories, one per line."""

    async def list_all(registry: Registry) -> None:
        for repository in await registry.repositories.list(registry.settings.registry_id):
            click.echo(repository.name)

    _with_registry(options, list_all)


@repo.command("images")
@click.argument("name")
@click.option("--region", help="The region of the repository [the deployment's].")
@storage_options
def repo_images(name: str, region: str | None, **options: Any) -> None:
    """List the images of repository NAME: digest, tags, size, and where each came from
    (pushed, or cached from an upstream) and went (its replication statuses)."""

    from moorage.services.images import ImageId

    async def images(home: Registry) -> None:
        registry = home.in_region(region) if region else home
        account = registry.settings.registry_id
        after = None
        while True:
            page = await registry.images.describe(account, name, after=after, limit=100)
            for detail in page.items:
                digest = detail.manifest.digest
                origin = await registry.cache.origin(account, name, digest)
                came = (
                    "pushed"
                    if origin is None
                    else (
                        f"cached from {origin.upstream_url}/{origin.upstream_repository} "
                        f"at {origin.imported_at.isoformat(timespec='seconds')}"
                    )
                )
                _, copies = await registry.replication.statuses(account, name, ImageId(str(digest)))
                went = " ".join(
                    f"{c.destination}:{c.status.value}"
                    + (f"({c.failure_code})" if c.failure_code else "")
                    for c in copies
                )
                tags = ",".join(detail.tags) or "-"
                line = f"{digest}  {tags}  {detail.size}  {came}"
                click.echo(f"{line}  replicated to {went}" if went else line)
            if page.after is None:
                return
            after = page.after

    _with_registry(options, images)


@repo.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete even when it still holds images.")
@storage_options
def repo_delete(name: str, force: bool, **options: Any) -> None:
    """Delete repository NAME."""

    async def delete(registry: Registry) -> None:
        await registry.repositories.delete(registry.settings.registry_id, name, force=force)
        click.echo(f"deleted {name}")

    _with_registry(options, delete)


@main.group()
def replication() -> None:
    """Replication between deployments (docs/replication.md)."""


@replication.command("public-key")
@storage_options
def replication_public_key(**options: Any) -> None:
    """Print the public key this deployment signs its replication tokens with; a peer lists
    it in replication_trusted_keys to accept replicas from here."""
    from moorage.iam.replica_tokens import ReplicaTokenSigner
    from moorage.iam.secrets import KeyRing, load_master_key

    settings = settings_from(options)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = KeyRing.derive(load_master_key(settings.master_key, settings.data_dir))
    click.echo(ReplicaTokenSigner(keys.replication_seed).public_key)


def _with_registry(options: dict[str, Any], work: Callable[[Registry], Awaitable[None]]) -> None:
    from moorage.app import open_registry

    settings = settings_from(options)

    async def main_() -> None:
        registry = await open_registry(settings)
        # An admin command acts on the data it is given: every region that holds
        # repositories, whether or not this command line names it (--also-region is the
        # server's business, for what requests may act in).
        stored = await registry.regions_in_use()
        unnamed = [region for region in stored if region not in settings.served_regions]
        if unnamed:
            await registry.close()
            regions = (*settings.regions, *unnamed)
            registry = await open_registry(dataclasses.replace(settings, regions=regions))
        try:
            await work(registry)
        finally:
            await registry.close()

    run_async(main_())


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


# Last: each of these modules adds its commands to ``main`` and uses the helpers above.
import moorage.cli_jobs  # noqa: E402, F401  (adds "moorage worker" and "moorage jobs")
from moorage import cli_admin, cli_fsck, cli_gc  # noqa: E402, F401
from moorage import cli_advisories as _advisories  # noqa: E402, F401  ("moorage advisories")
from moorage import cli_lifecycle as _lifecycle  # noqa: E402, F401  ("moorage lifecycle")
from moorage import cli_scanning as _scanning  # noqa: E402, F401  ("moorage sbom")
