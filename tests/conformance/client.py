"""A small ``/v2/`` client for the conformance workflows.

Every call returns a :class:`Reply` whose body has been read and whose connection has been
released, so a failed assertion never leaves a response open. Requests behave like the
upstream suite's client (Go's ``net/http`` through resty): a request built without a body
goes out with ``Content-Length: 0``, redirects are followed, and a ``Location`` taken from
one reply is reused as a path on the same registry, with any query it carries kept.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.conformance.content import Blob

SUCCESS = range(200, 300)


@dataclass(frozen=True)
class Reply:
    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def relative_location(self) -> str:
        """The ``Location`` header as path and query (it may be absolute or relative)."""
        parts = urlsplit(self.header("Location"))
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    def json(self) -> Any:
        return json.loads(self.body)

    def error_codes(self) -> list[str]:
        return [str(error.get("code")) for error in self.json().get("errors", [])]

    def __str__(self) -> str:
        headers = ", ".join(f"{key}: {value}" for key, value in self.headers.items())
        return f"{self.method} {self.url} -> {self.status} [{headers}] {self.body[:500]!r}"


def expect(reply: Reply, statuses: Collection[int]) -> Reply:
    """Assert ``reply.status`` is one of ``statuses``; the message shows the whole exchange."""
    assert reply.status in statuses, f"expected {sorted(statuses)}: {reply}"
    return reply


class RegistryClient:
    """Requests against one registry, with ``name`` as the default repository."""

    def __init__(self, base_url: str, name: str, session: requests.Session) -> None:
        self.base_url = base_url
        self.name = name
        self.session = session

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        url = f"{self.base_url}{path}"
        with self.session.request(
            method, url, params=params, headers=headers, data=body, timeout=30
        ) as response:
            return Reply(
                method, response.url, response.status_code, response.headers, response.content
            )

    def blob_path(self, digest: str, name: str | None = None) -> str:
        return f"/v2/{name or self.name}/blobs/{digest}"

    def manifest_path(self, reference: str, name: str | None = None) -> str:
        return f"/v2/{name or self.name}/manifests/{reference}"

    def uploads_path(self, name: str | None = None) -> str:
        return f"/v2/{name or self.name}/blobs/uploads/"

    def tags_path(self) -> str:
        return f"/v2/{self.name}/tags/list"

    def referrers_path(self, digest: str) -> str:
        return f"/v2/{self.name}/referrers/{digest}"

    def push_blob(self, blob: Blob) -> Reply:
        """The suite's setup push: ``POST`` a session, then ``PUT`` the blob with its digest."""
        session = self.request("POST", self.uploads_path())
        return self.request(
            "PUT",
            session.relative_location,
            params={"digest": blob.digest},
            headers={"Content-Type": "application/octet-stream", "Content-Length": blob.length},
            body=blob.content,
        )

    def push_manifest(self, reference: str, manifest: Blob, media_type: str) -> Reply:
        return self.request(
            "PUT",
            self.manifest_path(reference),
            headers={"Content-Type": media_type},
            body=manifest.content,
        )

    def delete_manifest(self, reference: str) -> Reply:
        return self.request("DELETE", self.manifest_path(reference))

    def delete_blob(self, digest: str) -> Reply:
        return self.request("DELETE", self.blob_path(digest))


def tag_list(reply: Reply) -> list[str]:
    """The tags of a tags-list reply, or ``[]`` when the body does not parse (as upstream)."""
    try:
        tags = reply.json().get("tags")
    except (ValueError, AttributeError):
        return []
    return list(tags or [])
