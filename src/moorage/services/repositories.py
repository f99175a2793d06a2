"""Repositories: explicit, as in ECR, unless a create-on-push pattern admits the name."""

from __future__ import annotations

from moorage.domain.errors import RepositoryNotEmpty, RepositoryNotFound
from moorage.domain.models import Repository
from moorage.domain.names import RepositoryName, matches_any
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction


def not_found(registry_id: str, name: str) -> RepositoryNotFound:
    # ECR's own wording, so that clients and people see the message they know.
    return RepositoryNotFound(
        f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'",
        detail={"name": name},
    )


class RepositoryService:
    def __init__(
        self, metadata: MetadataStore, clock: Clock, create_on_push: tuple[str, ...] = ()
    ) -> None:
        self._metadata = metadata
        self._clock = clock
        self._create_on_push = create_on_push

    async def create(self, registry_id: str, name: str) -> Repository:
        """Create a repository. Raises InvalidName, RepositoryAlreadyExists."""
        valid = RepositoryName(name)
        async with self._metadata.transaction() as tx:
            return await tx.create_repository(registry_id, valid, self._clock())

    async def get(self, registry_id: str, name: str) -> Repository:
        """Raises InvalidName, RepositoryNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            return await require(tx, registry_id, valid)

    async def check_push(self, registry_id: str, name: str) -> None:
        """Fail early, before a body is read, when a push to ``name`` cannot succeed:
        the repository neither exists nor may be created on push."""
        valid = RepositoryName(name)
        if matches_any(valid, self._create_on_push):
            return
        async with self._metadata.read() as tx:
            await require(tx, registry_id, valid)

    async def for_push(self, tx: MetadataTransaction, registry_id: str, name: str) -> Repository:
        """The repository a push goes to, created first when a create-on-push pattern matches.

        Runs inside the caller's transaction so that the push and the creation commit together.
        """
        valid = RepositoryName(name)
        repository = await tx.get_repository(registry_id, valid)
        if repository is not None:
            return repository
        if not matches_any(valid, self._create_on_push):
            raise not_found(registry_id, valid)
        return await tx.create_repository(registry_id, valid, self._clock())

    async def list(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]:
        async with self._metadata.read() as tx:
            return await tx.list_repositories(registry_id, after=after, limit=limit)

    async def delete(self, registry_id: str, name: str, *, force: bool = False) -> Repository:
        """Delete a repository; without ``force`` only when it holds no images."""
        valid = RepositoryName(name)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            if not force and await tx.count_manifests(repository.id):
                raise RepositoryNotEmpty(
                    f"The repository with name '{valid}' in registry with id '{registry_id}' "
                    "cannot be deleted because it still contains images"
                )
            await tx.delete_repository(repository.id)
            return repository


async def require(tx: MetadataTransaction, registry_id: str, name: str) -> Repository:
    repository = await tx.get_repository(registry_id, name)
    if repository is None:
        raise not_found(registry_id, name)
    return repository
