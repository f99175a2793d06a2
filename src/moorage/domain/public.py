"""ECR Public: an account's public registry, its aliases and its catalog data (shared
reference §10).

Where it lives. Each account has one public registry, global (no region, as ECR Public's
ARNs ``arn:aws:ecr-public::<account>:repository/<name>`` say). moorage keeps its repositories,
images and policies in the metadata store's namespace :data:`PUBLIC_NAMESPACE`, the key
the private registries give a region: so public repositories reuse every image, tag, blob
and upload record (and garbage collection sees their blobs), while their names never
clash with the same account's private repositories. It is not a region: no request is
signed for it, and ``regions_in_use`` leaves it out.

The registry's *alias* is the first path segment of its images' public address
(``<public-host>/<alias>/<repository>``, ECR Public's ``public.ecr.aws/<alias>/<repo>``).
A default alias is given when the account's first public repository is created, as ECR
Public does; it is random, and unique across the deployment.

What ECR Public does not have on public repositories (lifecycle, scanning, replication, tag
immutability, pull-through cache, KMS) is not wired there either.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from moorage.domain.errors import InvalidParameter

PUBLIC_NAMESPACE = "public"
# The region ECR Public's API is called in (its endpoint is api.ecr-public.us-east-1...):
# the region of its condition keys (aws:RequestedRegion).
PUBLIC_API_REGION = "us-east-1"

# RegistryAliasName in the ecr-public model.
ALIAS = re.compile(r"[a-z][a-z0-9]+(?:[._-][a-z0-9]+)*", re.ASCII)
ALIAS_LENGTH = (2, 50)
# ECR Public's default aliases are eight lowercase letters and digits, a letter first.
_DEFAULT_ALIAS_LENGTH = 8

# Catalog data limits (RepositoryCatalogDataInput): the model's, and the user guide's for
# the logo (a PNG; ECR Public also wants 60 to 2048 pixels a side).
MAX_DESCRIPTION = 1024
MAX_TEXT = 25_600
MAX_LIST = 50
MAX_LOGO_BYTES = 512_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOGO_PIXELS = (60, 2048)
MAX_DISPLAY_NAME = 100


def new_default_alias() -> str:
    first = secrets.choice(string.ascii_lowercase)
    rest = "".join(
        secrets.choice(string.ascii_lowercase + string.digits)
        for _ in range(_DEFAULT_ALIAS_LENGTH - 1)
    )
    return first + rest


def check_alias(name: str) -> str:
    low, high = ALIAS_LENGTH
    if not low <= len(name) <= high or ALIAS.fullmatch(name) is None:
        raise InvalidParameter(
            f"Invalid parameter at 'registryAlias' failed to satisfy constraint: 'The alias "
            f"must be {low} to {high} characters of lowercase letters, digits and . _ -, "
            "starting with a letter'"
        )
    return name


@dataclass(frozen=True, slots=True)
class PublicRegistry:
    """An account's public registry: ``alias`` is its only (default, primary) alias."""

    registry_id: str
    alias: str
    created_at: datetime
    display_name: str = ""
    description: str = ""
    logo: bytes | None = None
    # ECR Public shows the display name and logo only for verified accounts; a deployment
    # verifies its own publishers (``moorage public verify``).
    verified: bool = False


@dataclass(frozen=True, slots=True)
class CatalogData:
    """A public repository's catalog data, as the gallery shows it."""

    description: str = ""
    architectures: tuple[str, ...] = ()
    operating_systems: tuple[str, ...] = ()
    about_text: str = ""
    usage_text: str = ""
    logo: bytes | None = None
    categories: tuple[str, ...] = field(default=())

    def replaced(self, given: Mapping[str, object]) -> CatalogData:
        """This catalog data with the members of a ``RepositoryCatalogDataInput`` given
        (snake_case keys), each checked; members not given keep their value, as ECR
        Public's PutRepositoryCatalogData keeps them."""
        values: dict[str, object] = {}
        if "description" in given:
            values["description"] = _text(given["description"], "description", MAX_DESCRIPTION)
        for key, member in (
            ("architectures", "architectures"),
            ("operating_systems", "operatingSystems"),
            ("categories", "categories"),
        ):
            if key in given:
                values[key] = _names(given[key], member)
        if "about_text" in given:
            values["about_text"] = _text(given["about_text"], "aboutText", MAX_TEXT)
        if "usage_text" in given:
            values["usage_text"] = _text(given["usage_text"], "usageText", MAX_TEXT)
        if "logo_image_blob" in given:
            blob = given["logo_image_blob"]
            assert isinstance(blob, bytes)
            values["logo"] = check_logo(blob) if blob else None
        return replace(self, **values)  # type: ignore[arg-type]


def _text(value: object, member: str, limit: int) -> str:
    assert isinstance(value, str)  # the model validated the type and its length
    if len(value) > limit:
        raise InvalidParameter(
            f"Invalid parameter at '{member}' failed to satisfy constraint: 'Member must have "
            f"length less than or equal to {limit}'"
        )
    return value


def _names(value: object, member: str) -> tuple[str, ...]:
    assert isinstance(value, Sequence)
    names = tuple(dict.fromkeys(str(item) for item in value))  # a badge given twice is one
    if len(names) > MAX_LIST:
        raise InvalidParameter(
            f"Invalid parameter at '{member}' failed to satisfy constraint: 'Member must have "
            f"length less than or equal to {MAX_LIST}'"
        )
    return names


def check_logo(blob: bytes) -> bytes:
    """The logo, if it is a PNG of ECR Public's size limits; else InvalidParameter."""
    if len(blob) > MAX_LOGO_BYTES:
        raise InvalidParameter(
            "Invalid parameter at 'logoImageBlob' failed to satisfy constraint: 'The logo "
            f"must be at most {MAX_LOGO_BYTES} bytes'"
        )
    size = png_size(blob)
    low, high = LOGO_PIXELS
    if size is None or not all(low <= side <= high for side in size):
        raise InvalidParameter(
            "Invalid parameter at 'logoImageBlob' failed to satisfy constraint: 'The logo "
            f"must be a PNG image of {low} to {high} pixels a side'"
        )
    return blob


def png_size(blob: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, None when it is not a PNG."""
    if len(blob) < 24 or not blob.startswith(PNG_SIGNATURE) or blob[12:16] != b"IHDR":
        return None
    return int.from_bytes(blob[16:20], "big"), int.from_bytes(blob[20:24], "big")
