"""``moorage fsck [--verify-digests] [--after-gc]``: check the registry's invariants.

Prints each problem found (``services/fsck.py`` lists the invariants), then a summary line,
and exits 1 when there was any. It takes the storage options of ``moorage serve``; run it
on a quiet registry (it holds no lock, so a push in progress may show as a problem).

This module adds the ``fsck`` command to ``moorage.cli.main`` when imported.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from moorage.cli import main, run_async, settings_from, storage_options
from moorage.config import Settings
from moorage.services.fsck import FsckReport


@main.command()
@storage_options
@click.option(
    "--verify-digests",
    is_flag=True,
    help="Read every blob and check that it hashes to its digest (unrecorded ones always).",
)
@click.option(
    "--after-gc",
    is_flag=True,
    help="Also report staging areas and blob files left over, as after `moorage gc "
    "--grace-period 0 --upload-grace-period 0`.",
)
def fsck(verify_digests: bool, after_gc: bool, **options: Any) -> None:
    """Check that every tag, manifest and index reference resolves, that every recorded blob
    is stored whole, and that no torn or unverified file sits at a blob's final key."""
    report = run_async(check(settings_from(options), verify_digests, after_gc))
    for problem in report.problems:
        click.echo(str(problem))
    click.echo(report.summary(), file=sys.stderr if report.problems else sys.stdout)
    if report.problems:
        sys.exit(1)


async def check(settings: Settings, verify_digests: bool, after_gc: bool) -> FsckReport:
    from moorage.services.fsck import RegistryChecker
    from moorage.storage.blobs import build_blob_store
    from moorage.storage.metadata.sql.store import open_sql_metadata_store

    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    blobs = build_blob_store(settings.blob_store, root=settings.data_dir)
    try:
        checker = RegistryChecker(metadata, blobs)
        return await checker.run(verify_digests=verify_digests, after_gc=after_gc)
    finally:
        await blobs.close()
        await metadata.close()
