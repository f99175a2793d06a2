"""Every ``/v2/`` endpoint of the OCI Distribution Spec v1.1, one line each.

Order matters: upload routes come before the blob route, and ``_catalog`` before the
repository routes. Repository names may contain ``/``, hence ``{name:.+}``.
"""

from __future__ import annotations

from aiohttp import web

from moorage.protocols.oci import blobs, catalog, manifests, referrers, tags, uploads

NAME = "/v2/{name:.+}"

ROUTES = [
    web.get("/v2/", catalog.api_version),
    web.get("/v2/_catalog", catalog.catalog),
    web.get(f"{NAME}/tags/list", tags.list_tags),
    web.get(f"{NAME}/referrers/{{digest:[^/]+}}", referrers.list_referrers),
    web.get(f"{NAME}/manifests/{{reference:[^/]+}}", manifests.get_manifest, allow_head=False),
    web.head(f"{NAME}/manifests/{{reference:[^/]+}}", manifests.head_manifest),
    web.put(f"{NAME}/manifests/{{reference:[^/]+}}", manifests.put_manifest),
    web.delete(f"{NAME}/manifests/{{reference:[^/]+}}", manifests.delete_manifest),
    web.post(f"{NAME}/blobs/uploads/", uploads.start_upload),
    web.patch(f"{NAME}/blobs/uploads/{{upload_id:[^/]+}}", uploads.upload_chunk),
    web.put(f"{NAME}/blobs/uploads/{{upload_id:[^/]+}}", uploads.complete_upload),
    web.get(f"{NAME}/blobs/uploads/{{upload_id:[^/]+}}", uploads.upload_status, allow_head=False),
    web.delete(f"{NAME}/blobs/uploads/{{upload_id:[^/]+}}", uploads.cancel_upload),
    web.get(f"{NAME}/blobs/{{digest:[^/]+}}", blobs.get_blob, allow_head=False),
    web.head(f"{NAME}/blobs/{{digest:[^/]+}}", blobs.head_blob),
    web.delete(f"{NAME}/blobs/{{digest:[^/]+}}", blobs.delete_blob),
]
