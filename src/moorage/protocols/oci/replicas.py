"""What ``/v2/`` does differently for another deployment's replication (a principal with
``replicating``; iam/replica_tokens.py).

- The repository is created when missing, as ECR's replication creates it: the destination
  must grant the source account ``ecr:CreateRepository``, and the creation template for
  REPLICATION gives its settings (:func:`ensure_repository`, called by the upload start and
  the manifest PUT).
- A manifest PUT is a replica (:func:`replica_of`): the source's push time
  (``X-Moorage-Replica-Pushed-At``, ISO 8601) orders the copies that set a tag, an immutable
  tag that names another image leaves the copy untagged, and the image does not replicate
  again from here (one hop).
- A deletion is a replicated deletion: it goes no further.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from moorage.domain.creation_templates import AppliedFor
from moorage.domain.replication import PUSHED_AT_HEADER
from moorage.iam.actions import Action
from moorage.protocols.oci.auth import authorize
from moorage.protocols.oci.context import principal, registry_id, repository_name, services
from moorage.services.images import Replica


def replicating(request: web.Request) -> bool:
    return principal(request).replicating


async def ensure_repository(request: web.Request) -> None:
    """For replication only: create the request's repository when it does not exist."""
    if not replicating(request):
        return
    name = repository_name(request)
    regional = services(request)
    if await regional.repositories.exists(registry_id(request), name):
        return
    await authorize(request, Action.CREATE_REPOSITORY, name)
    await regional.repositories.ensure(registry_id(request), name, AppliedFor.REPLICATION)


def replica_of(request: web.Request) -> Replica | None:
    """The replica a manifest PUT of replication stores (None for any other caller)."""
    if not replicating(request):
        return None
    text = request.headers.get(PUSHED_AT_HEADER, "")
    try:
        pushed_at = datetime.fromisoformat(text)
    except ValueError:
        pushed_at = datetime.now(UTC)
    if pushed_at.tzinfo is None:
        pushed_at = pushed_at.replace(tzinfo=UTC)
    return Replica(pushed_at)
