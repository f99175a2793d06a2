"""``moorage admin``: accounts, IAM users, access keys and identity policies, from the shell.

::

    moorage admin init [--account-id ID] [--name NAME] [--force-new-key]
    moorage admin account list
    moorage admin user create NAME [--path /team/] | list | delete NAME
    moorage admin access-key create USER | list USER | deactivate|activate|delete USER KEY_ID
    moorage admin policy put USER NAME FILE|- | get USER NAME | list USER | delete USER NAME

Every command takes the storage options of ``moorage serve`` (``--data-dir``, ``--config``,
``--database-url``) and works while a server runs on the same data: each change is one
database transaction, and SQLite queues it behind the server's writers.

Which account (``--account-id``, else): the ``registry_id`` setting, unless it is the
placeholder ``000000000000``; then the only account there is. ``init`` with neither creates
an account with a random 12-digit id.

Secret access keys are printed once, when created, and never again. Failures print one line
on stderr and exit with status 2, like the rest of the ``moorage`` command.

This module adds the ``admin`` group to ``moorage.cli.main`` when imported (``cli.py``
imports it last, so that either module may be imported first).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import click

from moorage.cli import fail, main, run_async, settings_from, storage_options
from moorage.config import ConfigError, Settings
from moorage.domain.errors import AccountNotFound, AdminAlreadyExists
from moorage.domain.identities import AccessKeyStatus, AccountId, NewAccessKey
from moorage.iam.secrets import KeyRing, load_master_key
from moorage.ports.clock import system_clock
from moorage.services.identities import ADMIN_POLICY_NAME, IdentityService
from moorage.storage.metadata.sql.store import open_sql_metadata_store

F = TypeVar("F", bound=Callable[..., Any])

# Settings.registry_id's default: "no account chosen yet".
PLACEHOLDER_REGISTRY_ID = "000000000000"
DEFAULT_ACCOUNT_NAME = "moorage"
AWS_PROFILE = "moorage"


@dataclass(frozen=True)
class _Admin:
    settings: Settings
    identities: IdentityService


def _account_option(command: F) -> F:
    return click.option(
        "--account-id",
        metavar="ID",
        help="Account (12 digits) [registry_id setting, else the only account].",
    )(command)


def admin_options(command: F) -> F:
    """``--account-id`` and the storage options."""
    return _account_option(storage_options(command))


def _run(options: dict[str, Any], work: Callable[[_Admin], Awaitable[None]]) -> None:
    """Open the metadata store and the master key for the settings ``options`` give, run
    ``work``, close. Domain and configuration errors end the command with one line."""
    settings = settings_from(options)

    async def main_() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            keys = KeyRing.derive(load_master_key(settings.master_key, settings.data_dir))
        except ConfigError as exc:
            fail(str(exc))
        metadata = await open_sql_metadata_store(settings.resolved_database_url)
        try:
            identities = IdentityService(metadata, keys.access_key_secrets, system_clock)
            try:
                await work(_Admin(settings, identities))
            except AccountNotFound as exc:
                fail(f"{exc.message} (moorage admin init creates it)")
            except ConfigError as exc:
                fail(str(exc))
        finally:
            await metadata.close()

    run_async(main_())


async def _account_id(admin: _Admin, given: str | None) -> str:
    """The account a command works on (see the module docstring)."""
    if given is not None:
        return AccountId(given)
    if admin.settings.registry_id != PLACEHOLDER_REGISTRY_ID:
        return admin.settings.registry_id
    accounts = await admin.identities.list_accounts()
    if len(accounts) == 1:
        return accounts[0].registry_id
    if not accounts:
        fail("there is no account yet: run moorage admin init")
    fail(f"there are {len(accounts)} accounts: choose one with --account-id")


def _random_account_id() -> str:
    while True:
        candidate = f"{secrets.randbelow(10**12):012d}"
        if candidate != PLACEHOLDER_REGISTRY_ID:
            return candidate


@click.group()
def admin() -> None:
    """Manage accounts, IAM users, access keys and identity policies."""


# -- init -------------------------------------------------------------------------------


@admin.command("init")
@_account_option
@click.option("--name", help=f"Name of the account, when it is created [{DEFAULT_ACCOUNT_NAME}].")
@click.option(
    "--force-new-key",
    is_flag=True,
    help="When the account already has its admin user, give it another access key.",
)
@storage_options
def init(account_id: str | None, name: str | None, force_new_key: bool, **options: Any) -> None:
    """Create the first account, its admin user and an access key; print the key once.

    The admin user has the inline policy AdministratorAccess (every action on every
    resource). Run again, it refuses, unless --force-new-key.
    """

    async def work(admin: _Admin) -> None:
        registry_id = await _init_account_id(admin, account_id)
        try:
            result = await admin.identities.init_admin(
                registry_id, name or DEFAULT_ACCOUNT_NAME, force_new_key=force_new_key
            )
        except AdminAlreadyExists:
            fail(
                f"account {registry_id} already has its admin user; pass --force-new-key to "
                "give it another access key"
            )
        account, user = result.account, result.user
        click.echo(
            f"Account {account.registry_id} ({account.name}): "
            + ("created" if result.created_account else "already there")
        )
        click.echo(
            f"User {user.name} ({user.arn}): "
            + (f"created, with policy {ADMIN_POLICY_NAME}" if result.created_user else "existing")
        )
        _print_new_key(result.key)
        click.echo("")
        _print_usage(admin.settings, account.registry_id, result.key)

    _run(options, work)


async def _init_account_id(admin: _Admin, given: str | None) -> str:
    if given is not None:
        return AccountId(given)
    if admin.settings.registry_id != PLACEHOLDER_REGISTRY_ID:
        return admin.settings.registry_id
    accounts = await admin.identities.list_accounts()
    if len(accounts) == 1:
        return accounts[0].registry_id  # and init_admin refuses when it has its admin
    if accounts:
        fail(f"there are {len(accounts)} accounts: choose one with --account-id")
    return _random_account_id()


def _print_new_key(key: NewAccessKey) -> None:
    click.echo(f"Access key id:     {key.access_key_id}")
    click.echo(f"Secret access key: {key.secret_access_key}")
    click.echo("The secret is shown only this once: store it now.")


def endpoint_host(settings: Settings, registry_id: str) -> str:
    """``host[:port]`` clients reach this server at: the ``registry_host`` template filled
    in, else the listening address (a wildcard address becomes the loopback one)."""
    if settings.registry_host:
        return settings.registry_host.replace("{registry_id}", registry_id).replace(
            "{region}", settings.region
        )
    host = settings.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{settings.port}"


def endpoint_url(settings: Settings, registry_id: str) -> str:
    scheme = "https" if settings.tls_cert is not None else "http"
    return f"{scheme}://{endpoint_host(settings, registry_id)}"


def _print_usage(settings: Settings, registry_id: str, key: NewAccessKey) -> None:
    url = endpoint_url(settings, registry_id)
    region = settings.region
    key_id, secret = key.access_key_id, key.secret_access_key
    click.echo(f"Use it with the AWS CLI (profile {AWS_PROFILE}):")
    click.echo(f"  aws configure set aws_access_key_id {key_id} --profile {AWS_PROFILE}")
    click.echo(f"  aws configure set aws_secret_access_key {secret} --profile {AWS_PROFILE}")
    click.echo(f"  aws configure set region {region} --profile {AWS_PROFILE}")
    click.echo(f"  export AWS_PROFILE={AWS_PROFILE} AWS_ENDPOINT_URL_ECR={url}")
    click.echo("or with environment variables only:")
    click.echo(
        f"  export AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} "
        # AWS_DEFAULT_REGION for the AWS CLI v1 (`pip install awscli`), which reads only it;
        # AWS_REGION for v2 and the SDKs.
        f"AWS_REGION={region} AWS_DEFAULT_REGION={region} AWS_ENDPOINT_URL_ECR={url}"
    )
    click.echo("then log docker in:")
    click.echo(
        "  aws ecr get-login-password | docker login --username AWS --password-stdin "
        f"{endpoint_host(settings, registry_id)}"
    )
    if settings.registry_id != registry_id:
        click.echo(
            f"The server's default account is {settings.registry_id}: set "
            f'registry_id = "{registry_id}" (MOORAGE_REGISTRY_ID={registry_id}) to make it '
            "this one."
        )


# -- accounts ---------------------------------------------------------------------------


@admin.group("account")
def account() -> None:
    """List accounts (admin init creates them)."""


@account.command("list")
@storage_options
def account_list(**options: Any) -> None:
    """List accounts: id and name, one per line."""

    async def work(admin: _Admin) -> None:
        for found in await admin.identities.list_accounts():
            click.echo(f"{found.registry_id}\t{found.name}")

    _run(options, work)


# -- users ------------------------------------------------------------------------------


@admin.group("user")
def user() -> None:
    """Manage IAM users."""


@user.command("create")
@click.argument("name")
@click.option("--path", default="/", show_default=True, help="IAM path, such as /team/.")
@admin_options
def user_create(name: str, path: str, account_id: str | None, **options: Any) -> None:
    """Create user NAME (no keys, no policies: it may do nothing yet). Prints its ARN."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        created = await admin.identities.create_user(registry_id, name, path=path)
        click.echo(created.arn)

    _run(options, work)


@user.command("list")
@admin_options
def user_list(account_id: str | None, **options: Any) -> None:
    """List users: name, user id and ARN, one per line."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        for found in await admin.identities.list_users(registry_id):
            click.echo(f"{found.name}\t{found.user_id}\t{found.arn}")

    _run(options, work)


@user.command("delete")
@click.argument("name")
@admin_options
def user_delete(name: str, account_id: str | None, **options: Any) -> None:
    """Delete user NAME with its access keys and policies."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        await admin.identities.delete_user(registry_id, name)
        click.echo(f"deleted user {name}")

    _run(options, work)


# -- access keys ------------------------------------------------------------------------


@admin.group("access-key")
def access_key() -> None:
    """Manage users' access keys (at most two per user)."""


@access_key.command("create")
@click.argument("user_name", metavar="USER")
@admin_options
def access_key_create(user_name: str, account_id: str | None, **options: Any) -> None:
    """Create an access key for USER; print its id and secret (only this once)."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        _print_new_key(await admin.identities.create_access_key(registry_id, user_name))

    _run(options, work)


@access_key.command("list")
@click.argument("user_name", metavar="USER")
@admin_options
def access_key_list(user_name: str, account_id: str | None, **options: Any) -> None:
    """List USER's access keys: id, status and creation time, one per line."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        for key in await admin.identities.list_access_keys(registry_id, user_name):
            click.echo(f"{key.access_key_id}\t{key.status}\t{key.created_at.isoformat()}")

    _run(options, work)


def _status_command(name: str, status: AccessKeyStatus, summary: str) -> None:
    @access_key.command(name, help=summary)
    @click.argument("user_name", metavar="USER")
    @click.argument("access_key_id", metavar="ACCESS_KEY_ID")
    @admin_options
    def command(user_name: str, access_key_id: str, account_id: str | None, **options: Any) -> None:
        async def work(admin: _Admin) -> None:
            registry_id = await _account_id(admin, account_id)
            await admin.identities.set_access_key_status(
                registry_id, user_name, access_key_id, status
            )
            click.echo(f"{name}d {access_key_id}")

        _run(options, work)


_status_command(
    "deactivate",
    AccessKeyStatus.INACTIVE,
    "Deactivate USER's key ACCESS_KEY_ID: it signs nothing, and its login tokens stop working.",
)
_status_command("activate", AccessKeyStatus.ACTIVE, "Activate USER's key ACCESS_KEY_ID again.")


@access_key.command("delete")
@click.argument("user_name", metavar="USER")
@click.argument("access_key_id", metavar="ACCESS_KEY_ID")
@admin_options
def access_key_delete(
    user_name: str, access_key_id: str, account_id: str | None, **options: Any
) -> None:
    """Delete USER's key ACCESS_KEY_ID."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        await admin.identities.delete_access_key(registry_id, user_name, access_key_id)
        click.echo(f"deleted {access_key_id}")

    _run(options, work)


# -- identity policies ------------------------------------------------------------------


@admin.group("policy")
def policy() -> None:
    """Manage users' inline identity policies (IAM JSON)."""


@policy.command("put")
@click.argument("user_name", metavar="USER")
@click.argument("policy_name", metavar="NAME")
@click.argument("document", metavar="FILE|-", type=click.File("r", encoding="utf-8"))
@admin_options
def policy_put(
    user_name: str, policy_name: str, document: IO[str], account_id: str | None, **options: Any
) -> None:
    """Attach policy NAME to USER (replacing one of that name), read from FILE or stdin."""
    text = document.read()

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        await admin.identities.put_user_policy(registry_id, user_name, policy_name, text)
        click.echo(f"put policy {policy_name} on user {user_name}")

    _run(options, work)


@policy.command("get")
@click.argument("user_name", metavar="USER")
@click.argument("policy_name", metavar="NAME")
@admin_options
def policy_get(user_name: str, policy_name: str, account_id: str | None, **options: Any) -> None:
    """Print USER's policy NAME, exactly as it was put."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        found = await admin.identities.get_user_policy(registry_id, user_name, policy_name)
        click.echo(found.document, nl=not found.document.endswith("\n"))

    _run(options, work)


@policy.command("list")
@click.argument("user_name", metavar="USER")
@admin_options
def policy_list(user_name: str, account_id: str | None, **options: Any) -> None:
    """List the names of USER's policies, one per line."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        for found in await admin.identities.list_user_policies(registry_id, user_name):
            click.echo(found.name)

    _run(options, work)


@policy.command("delete")
@click.argument("user_name", metavar="USER")
@click.argument("policy_name", metavar="NAME")
@admin_options
def policy_delete(user_name: str, policy_name: str, account_id: str | None, **options: Any) -> None:
    """Delete USER's policy NAME."""

    async def work(admin: _Admin) -> None:
        registry_id = await _account_id(admin, account_id)
        await admin.identities.delete_user_policy(registry_id, user_name, policy_name)
        click.echo(f"deleted policy {policy_name} of user {user_name}")

    _run(options, work)


main.add_command(admin)
