"""Repositories: explicit, as in ECR, unless a create-on-push pattern admits the name.

Besides creation and deletion, a repository has settings (tag mutability, scan on push,
encryption: see ``domain/mutability.py`` for the mutability rules), resource tags and a
repository policy. The checks here are ECR's (shared reference §3.4, §4.1, §4.2):

- encryption is ``AES256`` (no key), ``KMS`` or ``KMS_DSSE`` (optional key of 1-2,048
  characters; without one, the AWS-managed key); it cannot change after creation;
- resource tags: keys of 1-128 characters that do not start with ``aws:`` (any case),
  values of 0-256 characters, at most 50 per repository, counted after the change; writing an
  existing key overwrites its value;
- a repository policy is at most 10,240 characters and must parse as a resource policy.
  Unlike ECR we cannot check that its principals exist, and ``force`` (ECR's lock-out guard)
  is not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from moorage.domain.creation_templates import AppliedFor, template_for
from moorage.domain.errors import (
    InvalidParameter,
    InvalidTagParameter,
    PolicyTextInvalid,
    PushToCacheRefused,
    RepositoryAlreadyExists,
    RepositoryNotEmpty,
    RepositoryNotFound,
    RepositoryPolicyNotFound,
    TooManyTags,
)
from moorage.domain.models import Repository, TagMutability
from moorage.domain.mutability import check_mutability
from moorage.domain.names import RepositoryName, matches_any
from moorage.domain.pull_through_cache import rule_for
from moorage.iam.policy import PolicyInvalid, parse_policy
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction

ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")
MAX_KMS_KEY_LENGTH = 2048
MAX_RESOURCE_TAGS = 50
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256
MAX_POLICY_LENGTH = 10_240
MAX_DESCRIBED_NAMES = 100
_RESERVED_TAG_PREFIX = "aws:"


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

    async def create(
        self,
        registry_id: str,
        name: str,
        *,
        image_tag_mutability: TagMutability = TagMutability.MUTABLE,
        exclusion_filters: Sequence[str] = (),
        scan_on_push: bool = False,
        encryption_type: str = "AES256",
        kms_key: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Repository:
        """Create a repository with its settings and resource tags, all or nothing.

        Raises InvalidName, InvalidParameter (mutability filters, encryption),
        InvalidTagParameter, TooManyTags, RepositoryAlreadyExists.
        """
        valid = RepositoryName(name)
        filters = check_mutability(image_tag_mutability, exclusion_filters)
        check_encryption(encryption_type, kms_key)
        tags = dict(tags or {})
        check_tags(tags)
        if len(tags) > MAX_RESOURCE_TAGS:
            raise too_many_tags()
        async with self._metadata.transaction() as tx:
            repository = await tx.create_repository(
                registry_id,
                valid,
                self._clock(),
                image_tag_mutability=image_tag_mutability,
                mutability_exclusion_filters=filters,
                scan_on_push=scan_on_push,
                encryption_type=encryption_type,
                kms_key=kms_key,
            )
            if tags:
                await tx.put_repository_tags(repository.id, tags)
            return repository

    async def get(self, registry_id: str, name: str) -> Repository:
        """Raises InvalidName, RepositoryNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            return await require(tx, registry_id, valid)

    async def check_push(self, registry_id: str, name: str) -> None:
        """Fail early, before a body is read, when a push to ``name`` cannot succeed:
        the repository neither exists nor may be created on push, or a pull-through cache
        owns it."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            await _refuse_cache_push(tx, registry_id, valid)
            if matches_any(valid, self._create_on_push):
                return
            await require(tx, registry_id, valid)

    async def for_push(
        self, tx: MetadataTransaction, registry_id: str, name: str, *, internal: bool = False
    ) -> Repository:
        """The repository a push goes to, created first when a create-on-push pattern matches.

        Runs inside the caller's transaction so that the push and the creation commit together.
        Concurrent first pushes to one new repository all succeed: one creates it, the others
        push to it. Raises InvalidName, RepositoryNotFound, PushToCacheRefused (a pull-through
        cache rule owns the name; ``internal``: the cache's own import, or a replica).
        """
        valid = RepositoryName(name)
        if not internal:
            await _refuse_cache_push(tx, registry_id, valid)
        repository = await tx.get_repository(registry_id, valid)
        if repository is not None:
            return repository
        if not matches_any(valid, self._create_on_push):
            raise not_found(registry_id, valid)
        try:
            return await self._create_as(tx, registry_id, valid, AppliedFor.CREATE_ON_PUSH)
        except RepositoryAlreadyExists:
            # Another push created it between our read and our insert (PostgreSQL runs
            # writers concurrently); the port promises the winner is visible now.
            repository = await tx.get_repository(registry_id, valid)
            if repository is None:  # and a delete removed it again since
                raise not_found(registry_id, valid) from None
            return repository

    async def exists(self, registry_id: str, name: str) -> bool:
        """Raises InvalidName."""
        async with self._metadata.read() as tx:
            return await tx.get_repository(registry_id, RepositoryName(name)) is not None

    async def ensure(self, registry_id: str, name: str, applied_for: AppliedFor) -> Repository:
        """The repository, created when it does not exist (a replica's or a cache's
        destination) with the settings of the creation template for ``applied_for`` that
        matches, else ECR's defaults. Concurrent calls all get the one repository."""
        valid = RepositoryName(name)
        async with self._metadata.transaction() as tx:
            repository = await tx.get_repository(registry_id, valid)
            if repository is not None:
                return repository
            try:
                return await self._create_as(tx, registry_id, valid, applied_for)
            except RepositoryAlreadyExists:
                pass
        async with self._metadata.read() as tx:
            return await require(tx, registry_id, valid)

    async def _create_as(
        self, tx: MetadataTransaction, registry_id: str, name: str, applied_for: AppliedFor
    ) -> Repository:
        """Create a repository on someone's behalf, as its creation template says (its
        settings, resource tags, repository policy and lifecycle policy), or with ECR's
        defaults when no template matches. Raises RepositoryAlreadyExists."""
        now = self._clock()
        template = template_for(await tx.list_creation_templates(registry_id), name, applied_for)
        if template is None:
            return await tx.create_repository(registry_id, name, now)
        repository = await tx.create_repository(
            registry_id,
            name,
            now,
            image_tag_mutability=template.image_tag_mutability,
            mutability_exclusion_filters=template.mutability_exclusion_filters,
            encryption_type=template.encryption_type,
            kms_key=template.kms_key,
        )
        if template.resource_tags:
            await tx.put_repository_tags(repository.id, template.resource_tags)
        if template.repository_policy:
            await tx.put_repository_policy(repository.id, template.repository_policy, now)
        if template.lifecycle_policy:
            await tx.put_lifecycle_policy(repository.id, template.lifecycle_policy, now)
        return repository

    async def describe(
        self,
        registry_id: str,
        names: Sequence[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Repository]:
        """DescribeRepositories: the named repositories in the order given (each once), or
        without names one page of all of them in binary order of name, after ``after``.

        Raises InvalidName, InvalidParameter (1-100 names; names with ``after``/``limit``,
        which ECR does not allow either), RepositoryNotFound for the first unknown name.
        """
        if names is None:
            return await self.list(registry_id, after=after, limit=limit)
        if after is not None or limit is not None:
            raise InvalidParameter(
                "Invalid parameter: nextToken and maxResults cannot be used with repositoryNames"
            )
        if not 1 <= len(names) <= MAX_DESCRIBED_NAMES:
            raise InvalidParameter(
                "Invalid parameter at 'repositoryNames' failed to satisfy constraint: "
                f"'Member must have length between 1 and {MAX_DESCRIBED_NAMES}'"
            )
        wanted = [RepositoryName(name) for name in dict.fromkeys(names)]
        async with self._metadata.read() as tx:
            return [await require(tx, registry_id, name) for name in wanted]

    async def list(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]:
        async with self._metadata.read() as tx:
            return await tx.list_repositories(registry_id, after=after, limit=limit)

    # -- settings -----------------------------------------------------------------------

    async def put_tag_mutability(
        self,
        registry_id: str,
        name: str,
        image_tag_mutability: TagMutability,
        exclusion_filters: Sequence[str] = (),
    ) -> Repository:
        """PutImageTagMutability: replace the mutability and its filters (future pushes only).

        Raises InvalidName, InvalidParameter, RepositoryNotFound.
        """
        valid = RepositoryName(name)
        filters = check_mutability(image_tag_mutability, exclusion_filters)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            updated = await tx.update_repository_settings(
                repository.id,
                image_tag_mutability=image_tag_mutability,
                mutability_exclusion_filters=filters,
            )
            return _still_there(updated, registry_id, valid)

    async def put_scanning_configuration(
        self, registry_id: str, name: str, scan_on_push: bool
    ) -> Repository:
        """PutImageScanningConfiguration. Raises InvalidName, RepositoryNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            updated = await tx.update_repository_settings(repository.id, scan_on_push=scan_on_push)
            return _still_there(updated, registry_id, valid)

    # -- resource tags ------------------------------------------------------------------

    async def tag_resource(self, registry_id: str, name: str, tags: Mapping[str, str]) -> None:
        """TagResource: add tags, overwriting existing keys' values.

        Raises InvalidName, InvalidTagParameter, RepositoryNotFound, TooManyTags (when the
        repository would then carry more than 50; nothing is written).
        """
        valid = RepositoryName(name)
        check_tags(tags)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            # Counted after the write, which rolls back with the exception.
            if await tx.put_repository_tags(repository.id, tags) > MAX_RESOURCE_TAGS:
                raise too_many_tags()

    async def untag_resource(self, registry_id: str, name: str, keys: Iterable[str]) -> None:
        """UntagResource: remove the tags with these keys; keys it does not carry are ignored.

        Raises InvalidName, InvalidTagParameter, RepositoryNotFound.
        """
        valid = RepositoryName(name)
        keys = list(keys)
        for key in keys:
            _check_tag_key(key)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            await tx.delete_repository_tags(repository.id, keys)

    async def list_tags(self, registry_id: str, name: str) -> dict[str, str]:
        """ListTagsForResource: the tags in binary order of key. Raises RepositoryNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, valid)
            return await tx.list_repository_tags(repository.id)

    # -- repository policy --------------------------------------------------------------

    async def set_policy(self, registry_id: str, name: str, text: str) -> str:
        """SetRepositoryPolicy: replace the policy; returns the text as stored (unchanged).

        Raises InvalidName, InvalidParameter (too long), PolicyTextInvalid, RepositoryNotFound.
        """
        valid = RepositoryName(name)
        check_policy_text(text, "repository")
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            await tx.put_repository_policy(repository.id, text, self._clock())
        return text

    async def get_policy(self, registry_id: str, name: str) -> str:
        """GetRepositoryPolicy. Raises RepositoryNotFound, RepositoryPolicyNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, valid)
            text = await tx.get_repository_policy(repository.id)
        if text is None:
            raise _policy_not_found(registry_id, valid)
        return text

    async def delete_policy(self, registry_id: str, name: str) -> str:
        """DeleteRepositoryPolicy; returns the text it removed.

        Raises RepositoryNotFound, RepositoryPolicyNotFound.
        """
        valid = RepositoryName(name)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            text = await tx.delete_repository_policy(repository.id)
        if text is None:
            raise _policy_not_found(registry_id, valid)
        return text

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
            await tx.delete_repository(repository.id, now=self._clock())
            return repository


async def _refuse_cache_push(tx: MetadataTransaction, registry_id: str, name: str) -> None:
    """Raise PushToCacheRefused when a pull-through cache rule owns ``name``: its images come
    from the upstream only."""
    rule = rule_for(await tx.list_cache_rules(registry_id), name)
    if rule is not None:
        raise PushToCacheRefused(
            f"The repository with name '{name}' in the registry with id '{registry_id}' is "
            f"a pull through cache of {rule.upstream_url}: images cannot be pushed to it"
        )


async def require(tx: MetadataTransaction, registry_id: str, name: str) -> Repository:
    repository = await tx.get_repository(registry_id, name)
    if repository is None:
        raise not_found(registry_id, name)
    return repository


def check_policy_text(text: str, kind: str) -> None:
    """Check a repository or registry policy (``kind``) as ECR does before storing it.

    Raises InvalidParameter when it is too long, PolicyTextInvalid when it does not parse
    as a resource policy (with ECR's message; the parser's reason goes in ``detail``).
    """
    if len(text) > MAX_POLICY_LENGTH:
        raise InvalidParameter(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
            f"'Member must have length less than or equal to {MAX_POLICY_LENGTH}'"
        )
    try:
        parse_policy(text, kind="resource")
    except PolicyInvalid as error:
        raise PolicyTextInvalid(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
            f"'Invalid {kind} policy provided'",
            detail={"reason": str(error)},
        ) from error


def _still_there(repository: Repository | None, registry_id: str, name: str) -> Repository:
    # Found a statement earlier in the same transaction; only a concurrent delete between
    # the two (PostgreSQL) makes it vanish.
    if repository is None:
        raise not_found(registry_id, name)
    return repository


def _policy_not_found(registry_id: str, name: str) -> RepositoryPolicyNotFound:
    return RepositoryPolicyNotFound(
        f"Repository policy does not exist for the repository with name '{name}' "
        f"in the registry with id '{registry_id}'",
        detail={"name": name},
    )


def check_encryption(encryption_type: str, kms_key: str | None) -> None:
    if encryption_type not in ENCRYPTION_TYPES:
        raise InvalidParameter(
            "Invalid parameter at 'encryptionType' failed to satisfy constraint: "
            f"'Member must satisfy enum value set: [{', '.join(ENCRYPTION_TYPES)}]'"
        )
    if kms_key is None:
        return
    if encryption_type == "AES256":
        raise InvalidParameter(
            "Invalid parameter: a kmsKey can only be given with the KMS or KMS_DSSE encryption type"
        )
    if not 1 <= len(kms_key) <= MAX_KMS_KEY_LENGTH:
        raise InvalidParameter(
            "Invalid parameter at 'kmsKey' failed to satisfy constraint: "
            f"'Member must have length between 1 and {MAX_KMS_KEY_LENGTH}'"
        )


def _check_tag_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_TAG_KEY_LENGTH:
        raise InvalidTagParameter(
            f"Tag keys must be 1 to {MAX_TAG_KEY_LENGTH} characters long",
            detail={"key": key[:MAX_TAG_KEY_LENGTH]},
        )
    # AWS reserves the prefix, in any case, for its own tags.
    if key[: len(_RESERVED_TAG_PREFIX)].lower() == _RESERVED_TAG_PREFIX:
        raise InvalidTagParameter(
            f"The tag key '{key}' is not valid: keys beginning with "
            f"'{_RESERVED_TAG_PREFIX}' are reserved for AWS use",
            detail={"key": key},
        )


def check_tags(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        _check_tag_key(key)
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise InvalidTagParameter(
                f"Tag values must be at most {MAX_TAG_VALUE_LENGTH} characters long",
                detail={"key": key},
            )


def too_many_tags() -> TooManyTags:
    # ECR's wording (the TooManyTagsException documentation).
    return TooManyTags(
        "The list of tags on the repository is over the limit. The maximum number of tags "
        f"that can be applied to a repository is {MAX_RESOURCE_TAGS}."
    )
