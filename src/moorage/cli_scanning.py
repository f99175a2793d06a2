"""``moorage sbom IMAGE [--account-id ID]``: print the CycloneDX SBOM of an image's latest scan.

``IMAGE`` is ``REPOSITORY:TAG``, ``REPOSITORY@DIGEST`` or ``REPOSITORY`` (the tag ``latest``),
in the default account unless ``--account-id`` names another. The SBOM is the one the scan
pushed as a referrer of the image (``artifactType application/vnd.cyclonedx+json``); an image
never scanned has none, which is a one-line error. It takes the storage options of
``moorage serve`` and only reads, so it works beside a running server.

This module adds the command to ``moorage.cli.main`` when imported (``cli.py`` imports it last).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from moorage.cli import _with_registry, main, storage_options
from moorage.services.images import ImageId

if TYPE_CHECKING:
    from moorage.app import Registry


@main.command("sbom")
@click.argument("image")
@click.option("--account-id", metavar="ID", help="The image's account [the default one].")
@storage_options
def sbom(image: str, account_id: str | None, **options: Any) -> None:
    """Print the SBOM of IMAGE (REPOSITORY[:TAG] or REPOSITORY@DIGEST)."""
    name, image_id = parse_image(image)

    async def work(registry: Registry) -> None:
        document = await registry.scanning.sbom(
            account_id or registry.settings.registry_id, name, image_id
        )
        sys.stdout.buffer.write(document)
        sys.stdout.buffer.write(b"\n")

    _with_registry(options, work)


def parse_image(text: str) -> tuple[str, ImageId]:
    """``repo@digest``, ``repo:tag`` or ``repo`` (tag ``latest``), as docker names images."""
    if "@" in text:
        name, _, digest = text.partition("@")
        return name, ImageId(digest=digest)
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return text[:colon], ImageId(tag=text[colon + 1 :])
    return text, ImageId(tag="latest")
