"""``moorage lifecycle run [--repository R] [--account-id ID] [--region R] [--dry-run]`` and
``moorage lifecycle history [--repository R] [--account-id ID] [--limit N] [--images]``.

Runs the lifecycle policies now, exactly as the scheduled job does (``services/lifecycle.py``):
every repository with a policy, or those named ``R`` (in every account and region, or in
``--account-id`` and ``--region``).
It prints one line per image expired (or, with ``--dry-run``, that would be) with the rule
that decided, then one summary line per repository. Each run is recorded in the audit trail.
A repository whose run fails is reported on stderr and the others still run; the exit status
is then 1. ``history`` prints that trail (scheduled runs, ``run`` and dry runs alike), one line
per run, newest first; with ``--images``, the image lines under each.

It takes the storage options of ``moorage serve`` (``--data-dir``, ``--config``,
``--database-url``) and works while a server runs on the same data: deletions go in
BatchDeleteImage-like transactions of up to 100 images, which SQLite queues behind the
server's writers.

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
@click.option("--region", metavar="REGION", help="Only this region's repositories [every region].")
@click.option("--dry-run", is_flag=True, help="Report what would expire; delete nothing.")
@storage_options
def run(
    repository: str | None,
    account_id: str | None,
    region: str | None,
    dry_run: bool,
    **options: Any,
) -> None:
    """Evaluate lifecycle policies now and expire what they decide."""

    failed: list[str] = []

    def report_failure(target: Repository, error: Exception) -> None:
        failed.append(target.name)
        click.echo(f"failed {target.registry_id}/{target.name}: {error}", err=True)

    async def work(registry: Registry) -> None:
        regions = [region] if region is not None else await registry.regions_in_use()
        runs = []
        for name in regions:
            runs += await registry.in_region(name).lifecycle.run(
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


@lifecycle.command("history")
@click.option("--repository", metavar="NAME", help="Only the repositories named NAME.")
@click.option("--account-id", metavar="ID", help="Only repositories of this account.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N runs."
)
@click.option("--images", is_flag=True, help="Also list each image a run expired or kept.")
@storage_options
def history(
    repository: str | None, account_id: str | None, limit: int, images: bool, **options: Any
) -> None:
    """Show the audit trail of lifecycle runs, newest first."""

    async def work(registry: Registry) -> None:
        runs = await registry.lifecycle.history(
            registry_id=account_id, repository=repository, limit=limit
        )
        if not runs:
            click.echo("no lifecycle run recorded")
        for run in runs:
            click.echo(_history_line(run))
            if images:
                for line in _image_lines(run):
                    click.echo(f"  {line}")

    _with_registry(options, work)


def _history_line(run: LifecycleRun) -> str:
    """``2026-11-27T01:00:00Z 123456789012/web: expired 5 images, kept 1 (dry run)``."""
    expired = sum(1 for image in run.images if image.deleted or run.dry_run)
    kept = len(run.images) - expired
    verb = "would expire" if run.dry_run else "expired"
    line = (
        f"{run.finished_at:%Y-%m-%dT%H:%M:%SZ} {run.registry_id}/{run.repository_name}: "
        f"{verb} {expired} image{'s' if expired != 1 else ''}"
    )
    if kept:
        line += f", kept {kept} that changed since the evaluation"
    return line + (" (dry run)" if run.dry_run else "")


def _image_lines(run: LifecycleRun) -> list[str]:
    """One line per image of ``run``: what happened to it and by which rule."""
    verb = "would expire" if run.dry_run else "expired"
    where = f"{run.registry_id}/{run.repository_name}"
    lines = []
    for image in run.images:
        tags = ",".join(image.tags) or "<untagged>"
        if image.deleted or run.dry_run:
            lines.append(f"{verb} {where}@{image.digest} [{tags}] by rule {image.rule_priority}")
        else:
            lines.append(
                f"kept {where}@{image.digest} [{tags}] (rule {image.rule_priority}): "
                "it changed since the evaluation"
            )
    return lines


def _report(run: LifecycleRun) -> None:
    for line in _image_lines(run):
        click.echo(line)
    count = sum(1 for image in run.images if image.deleted or run.dry_run)
    verb = "would expire" if run.dry_run else "expired"
    click.echo(
        f"{run.registry_id}/{run.repository_name}: {verb} {count} image{'s' if count != 1 else ''}"
    )
