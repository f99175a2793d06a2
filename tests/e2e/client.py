"""Small registry clients for the end-to-end tests.

:class:`RegistryClient` pushes and pulls the way OCI clients do, over ``requests``.
:func:`raw_request` writes a request byte for byte on a fresh socket, for inputs that
client libraries would refuse or normalise (``..`` in paths, bad headers, short bodies).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(data: bytes, media_type: str) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


def image_manifest(
    config: bytes, layers: list[bytes], annotations: dict[str, str] | None = None
) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config, OCI_CONFIG),
        "layers": [descriptor(layer, OCI_LAYER) for layer in layers],
    }
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document).encode()


def image_index(manifests: list[bytes]) -> bytes:
    entries = [
        {**descriptor(payload, OCI_MANIFEST), "platform": {"architecture": f"a{i}", "os": "linux"}}
        for i, payload in enumerate(manifests)
    ]
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return json.dumps(document).encode()


class RegistryClient:
    """A ``requests`` session against one server. Methods assert the success status."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def request(self, method: str, path: str, **options: Any) -> requests.Response:
        options.setdefault("timeout", self.timeout)
        return self.session.request(method, self.url(path), **options)

    def push_blob(self, name: str, data: bytes) -> str:
        """One request: ``POST .../blobs/uploads/?digest=``."""
        digest = digest_of(data)
        response = self.request(
            "POST", f"/v2/{name}/blobs/uploads/", params={"digest": digest}, data=data
        )
        assert response.status_code == 201, response.text
        return digest

    def start_upload(self, name: str) -> str:
        """``POST .../blobs/uploads/``: the session's location (a path)."""
        response = self.request("POST", f"/v2/{name}/blobs/uploads/")
        assert response.status_code == 202, response.text
        return response.headers["Location"]

    def patch(self, location: str, data: bytes, offset: int) -> requests.Response:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(data) - 1}",
        }
        return self.request("PATCH", location, data=data, headers=headers)

    def upload_range(self, location: str) -> str:
        """The ``Range`` an upload session reports (``GET`` on its location)."""
        response = self.request("GET", location)
        assert response.status_code == 204, response.text
        return response.headers["Range"]

    def push_blob_chunked(self, name: str, data: bytes, chunk_size: int) -> str:
        """POST, one PATCH per chunk, then PUT with the digest."""
        location = self.start_upload(name)
        for offset in range(0, len(data), chunk_size):
            response = self.patch(location, data[offset : offset + chunk_size], offset)
            assert response.status_code == 202, response.text
            location = response.headers["Location"]
        return self.complete(location, data)

    def complete(self, location: str, data: bytes) -> str:
        digest = digest_of(data)
        response = self.request("PUT", location, params={"digest": digest})
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == digest
        return digest

    def put_manifest(
        self, name: str, reference: str, payload: bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        response = self.request(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            data=payload,
            headers={"Content-Type": media_type},
        )
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == digest_of(payload)
        return digest_of(payload)

    def push_image(
        self, name: str, reference: str, config: bytes, layers: list[bytes]
    ) -> tuple[str, bytes]:
        """Push the blobs, then the manifest; return (manifest digest, manifest bytes)."""
        for blob in (config, *layers):
            self.push_blob(name, blob)
        payload = image_manifest(config, layers)
        return self.put_manifest(name, reference, payload), payload

    def blob(self, name: str, digest: str) -> bytes:
        response = self.request("GET", f"/v2/{name}/blobs/{digest}")
        assert response.status_code == 200, response.text
        return response.content

    def manifest(self, name: str, reference: str) -> requests.Response:
        accept = ", ".join([OCI_MANIFEST, OCI_INDEX])
        return self.request("GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": accept})

    def tags(self, name: str) -> list[str]:
        response = self.request("GET", f"/v2/{name}/tags/list")
        assert response.status_code == 200, response.text
        return list(response.json()["tags"])


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def error_code(self) -> str:
        return str(json.loads(self.body)["errors"][0]["code"])


def request_head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    """A request line and headers, exactly as given (plus Host and Connection: close)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> RawResponse:
    """Send one request on a new connection and read the whole response.

    ``Content-Length`` is added from ``body`` unless ``headers`` sets it (or
    ``Transfer-Encoding``). A server that answers before reading the whole body may close
    the connection while we are still sending; the response is read all the same.
    """
    headers = dict(headers or {})
    if not {"content-length", "transfer-encoding"} & {name.lower() for name in headers}:
        headers["Content-Length"] = str(len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # A server that answered early may have closed; its response is still to be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request_head(method, path, headers) + body)
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
            content = response.read()
        finally:
            response.close()
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, content
        )
