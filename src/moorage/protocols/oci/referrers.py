"""``GET /v2/<name>/referrers/<digest>`` (distribution-spec 1.1): an OCI index of the
manifests whose ``subject`` is ``<digest>``, optionally filtered by ``artifactType``."""

from __future__ import annotations

import json

from aiohttp import web

from moorage.domain.digests import Digest
from moorage.domain.manifests import OCI_INDEX
from moorage.iam.actions import Action
from moorage.protocols.oci.auth import requires
from moorage.protocols.oci.context import registry_id, repository_name, services


@requires(Action.LIST_IMAGES)
async def list_referrers(request: web.Request) -> web.Response:
    subject = Digest.parse(request.match_info["digest"])
    artifact_type = request.query.get("artifactType") or None
    referrers = await services(request).images.referrers(
        registry_id(request), repository_name(request), subject, artifact_type
    )
    descriptors = []
    for manifest in referrers:
        descriptor: dict[str, object] = {
            "mediaType": manifest.media_type,
            "digest": str(manifest.digest),
            "size": manifest.size,
        }
        if manifest.artifact_type:
            descriptor["artifactType"] = manifest.artifact_type
        if manifest.annotations:
            descriptor["annotations"] = dict(manifest.annotations)
        descriptors.append(descriptor)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return web.Response(body=json.dumps(index).encode(), content_type=OCI_INDEX, headers=headers)
