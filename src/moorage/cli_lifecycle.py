"""``moorage lifecycle run [--repository R] [--account-id ID] [--dry-run]``.

Runs the lifecycle policies now, exactly as the scheduled job does (``services/lifecycle.py``):
every repository with a policy, or those named ``R`` (in every account, or in ``--account-id``).
It prints one line per image expired (or, with ``--dry-run``, that would be) with the rule
that decided, then one summary line per repository. Each run is recorded in the audit trail.
A repository whose run fails is reported on stderr and the others still run; the exit status
is then 1.

It takes the storage options of ``moorage serve`` (``--data-dir``, ``--config``,
``--database-url``) and works while a server runs on the same data: each deletion is one
BatchDeleteImage-like transaction, which SQLite queues behind the server's writers.

This module adds the ``lifecycle`` group to ``moorage.cli.main`` when imported (``cli.py``
imports it last).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from moorage.cli import _with_registry, main, storage_options

if TYPE_CHECKING:
    from moorage.app import Registry
    from moorage.domain.models import Repository
    from moorage.ports.lifecycle import LifecycleRun


@main.group()
def lifecycle() -> None:
    """Lifecycle policies."""


@lifecycle.command("run")
@click.option("--repository", metavar="NAME", help="Only the repositories named NAME.")
@click.option("--account-id", metavar="ID", help="Only repositories of this account.")
@click.option("--dry-run", is_flag=True, help="Report what would expire; delete nothing.")
@storage_options
def run(repository: str | None, account_id: str | None, dry_run: bool, **options: Any) -> None:
    """Evaluate lifecycle policies now and expire what they decide."""

    failed: list[str] = []

    def report_failure(target: Repository, error: Exception) -> None:
        failed.append(target.name)
        click.echo(f"failed {target.registry_id}/{target.name}: {error}", err=True)

    async def work(registry: Registry) -> None:
        runs = await registry.lifecycle.run(
            registry_id=account_id,
            repository=repository,
            dry_run=dry_run,
            on_run=_report,
            on_failure=report_failure,
        )
        if not runs and not failed:
            where = f" named {repository}" if repository else ""
            click.echo(f"no repository{where} has a lifecycle policy")

    try:
        _with_registry(options, work)
    except Exception:
        if not failed:
            raise
        # Every repository failed (the service raises then); each was reported above.
    if failed:
        plural = "repository" if len(failed) == 1 else "repositories"
        raise click.ClickException(f"{len(failed)} {plural} failed: {', '.join(failed)}")


def _report(run: LifecycleRun) -> None:
    verb = "would expire" if run.dry_run else "expired"
    where = f"{run.registry_id}/{run.repository_name}"
    for image in run.images:
        tags = ",".join(image.tags) or "<untagged>"
        if image.deleted or run.dry_run:
            click.echo(f"{verb} {where}@{image.digest} [{tags}] by rule {image.rule_priority}")
        else:
            click.echo(
                f"kept {where}@{image.digest} [{tags}] (rule {image.rule_priority}): "
                "it changed since the evaluation"
            )
    count = sum(1 for image in run.images if image.deleted or run.dry_run)
    click.echo(f"{where}: {verb} {count} image{'s' if count != 1 else ''}")
