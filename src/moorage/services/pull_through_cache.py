"""Pull-through cache: repositories whose images come from an upstream registry, on demand.

Rules (:class:`CacheRuleService`: ECR's Create/Describe/Update/Delete/Validate
PullThroughCacheRule) say which names a cache owns (``domain/pull_through_cache.py``). A pull
of a name a rule owns goes through :class:`PullThroughCache` (shared reference §8.2;
docs/pull-through-cache.md)::

    manifest by digest   cached?  -> served; never asks the upstream (digests do not change)
    manifest by tag      cached and checked less than ``refresh_interval`` ago -> served
                         else a HEAD upstream: the same digest -> served (checked again now);
                         another -> imported, then served
                         upstream down, 429, 5xx, refusing -> the cached copy, if any
                         (else UpstreamUnavailable, 503 UNAVAILABLE)
                         tag gone upstream -> the cached copy stays served (see below)
    first import         needs ecr:CreateRepository (to create the repository; else
                         NAME_UNKNOWN, as ECR answers) and ecr:BatchImportUpstreamImage (else
                         MANIFEST_UNKNOWN); an index's children are imported before it
    blob                 linked here? served. Named by a cached manifest? fetched from the
                         upstream and streamed to the client while it is stored; committed
                         only once its digest is verified (else the connection is cut and
                         nothing is kept)

A tag deleted upstream: the cached copy stays served, and the check is recorded so that the
upstream is asked again only after another refresh interval. A cache exists so that pulls
keep working when the upstream changes or fails; a lifecycle policy on the repository is the
way to let cached images go.

Concurrent first pulls fetch each manifest and each blob from the upstream once per process:
the first request fetches, the others wait for it and are served from the store. Upstream
tokens are cached by the client until they expire (``clients/oci.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from moorage.clients.oci import BasicCredentials, OciRegistryClient
from moorage.domain.creation_templates import AppliedFor
from moorage.domain.digests import Digest, StreamingHasher
from moorage.domain.errors import (
    AccessDenied,
    DigestMismatch,
    ManifestUnknown,
    PullThroughCacheRuleAlreadyExists,
    PullThroughCacheRuleLimitExceeded,
    PullThroughCacheRuleNotFound,
    RepositoryNotFound,
    SecretNotFound,
    UpstreamUnavailable,
)
from moorage.domain.jobs import Job
from moorage.domain.manifests import parse_manifest
from moorage.domain.models import BlobRecord, ManifestRecord, Repository
from moorage.domain.names import RepositoryName
from moorage.domain.pull_through_cache import (
    MAX_RULES,
    CacheRule,
    check_rule,
    normalize_prefix,
    rule_for,
)
from moorage.iam.actions import Action
from moorage.ports.blobs import BlobStore
from moorage.ports.caches import UpstreamImage
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.ports.upstream import (
    UpstreamError,
    UpstreamManifest,
    UpstreamNotFound,
    UpstreamRegistry,
    UpstreamUnreachable,
)
from moorage.services.images import ImageService, Reference
from moorage.services.repositories import RepositoryService

log = logging.getLogger("moorage.cache")

DEFAULT_REFRESH_INTERVAL = timedelta(hours=24)
FILL_JOB = "cache-fill"
# How long a registry's rules are remembered between pulls: a pull of a name no rule owns
# then costs no database read. A rule created here is seen at once (the memory is dropped).
RULES_MEMORY_SECONDS = 2.0
# An index lists at most this many children that an import fetches.
MAX_CHILDREN = 1024

# Asks the caller's authorizer about one more action on the repository pulled; raises
# AccessDenied.
Authorize = Callable[[Action | str], Awaitable[None]]
# The credentials of a rule's credentialArn (registry id, ARN); raises SecretNotFound or
# UnableToAccessSecret.
CredentialSource = Callable[[str, str], Awaitable[BasicCredentials]]
UpstreamFactory = Callable[[str, BasicCredentials | None], UpstreamRegistry]


async def no_secrets(registry_id: str, arn: str) -> BasicCredentials:
    """The credential source of a deployment without Secrets Manager: no secret exists."""
    raise SecretNotFound(f"Secrets Manager can't find the specified secret: {arn}")


class CacheRuleService:
    """The rules of one region's registries (ECR's PullThroughCacheRule operations)."""

    def __init__(
        self,
        metadata: MetadataStore,
        clock: Clock,
        *,
        credentials: CredentialSource = no_secrets,
        upstream: UpstreamFactory | None = None,
        on_change: Callable[[str], None] = lambda registry_id: None,
    ) -> None:
        self._metadata = metadata
        self._clock = clock
        self._credentials = credentials
        self._upstream = upstream or _oci_upstream
        self._on_change = on_change

    async def create(self, registry_id: str, rule: CacheRule) -> CacheRule:
        """Add a rule. Raises InvalidParameter, UnsupportedUpstreamRegistry, SecretNotFound
        (and UnableToAccessSecret) for a credentialArn that cannot be read,
        PullThroughCacheRuleLimitExceeded (50), PullThroughCacheRuleAlreadyExists."""
        rule = check_rule(rule)
        if rule.credential_arn is not None:
            await self._credentials(registry_id, rule.credential_arn)
        now = self._clock()
        async with self._metadata.transaction() as tx:
            existing = await tx.list_cache_rules(registry_id)
            if any(r.prefix == rule.prefix for r in existing):
                raise _already_exists(registry_id, rule.prefix)
            if len(existing) >= MAX_RULES:
                raise PullThroughCacheRuleLimitExceeded(
                    f"The maximum number of pull through cache rules ({MAX_RULES}) for the "
                    f"registry with id '{registry_id}' has been reached."
                )
            if not await tx.insert_cache_rule(registry_id, rule, now):
                raise _already_exists(registry_id, rule.prefix)
        self._on_change(registry_id)
        return replace(rule, created_at=now, updated_at=now)

    async def describe(self, registry_id: str, prefixes: Sequence[str] | None) -> list[CacheRule]:
        """The registry's rules, or those of ``prefixes`` (each must exist, else
        PullThroughCacheRuleNotFound), by prefix."""
        async with self._metadata.read() as tx:
            rules = await tx.list_cache_rules(registry_id)
        if prefixes is None:
            return rules
        by_prefix = {r.prefix: r for r in rules}
        found = []
        for prefix in dict.fromkeys(normalize_prefix(p) for p in prefixes):
            if prefix not in by_prefix:
                raise _not_found(registry_id, prefix)
            found.append(by_prefix[prefix])
        return found

    async def update(
        self,
        registry_id: str,
        prefix: str,
        *,
        credential_arn: str | None,
        custom_role_arn: str | None,
        upstream_role_arn: str | None,
    ) -> CacheRule:
        """Set a rule's credentials and roles. Raises PullThroughCacheRuleNotFound,
        SecretNotFound, UnableToAccessSecret."""
        if credential_arn is not None:
            await self._credentials(registry_id, credential_arn)
        prefix = normalize_prefix(prefix)
        async with self._metadata.transaction() as tx:
            rule = await tx.update_cache_rule(
                registry_id,
                prefix,
                credential_arn=credential_arn,
                custom_role_arn=custom_role_arn,
                upstream_role_arn=upstream_role_arn,
                now=self._clock(),
            )
        if rule is None:
            raise _not_found(registry_id, prefix)
        self._on_change(registry_id)
        return rule

    async def delete(self, registry_id: str, prefix: str) -> CacheRule:
        """Remove a rule (its repositories and images stay). Raises
        PullThroughCacheRuleNotFound."""
        prefix = normalize_prefix(prefix)
        async with self._metadata.transaction() as tx:
            rule = await tx.delete_cache_rule(registry_id, prefix)
        if rule is None:
            raise _not_found(registry_id, prefix)
        self._on_change(registry_id)
        return rule

    async def validate(self, registry_id: str, prefix: str) -> tuple[CacheRule, str | None]:
        """The rule and why it does not work (None: it does): its secret must be readable,
        the upstream reachable, and its credentials accepted. Raises
        PullThroughCacheRuleNotFound."""
        (rule,) = await self.describe(registry_id, [prefix])
        try:
            credentials = None
            if rule.credential_arn is not None:
                credentials = await self._credentials(registry_id, rule.credential_arn)
        except (SecretNotFound, AccessDenied) as refused:
            return rule, refused.message
        except Exception as exc:  # UnableToAccessSecret and kin: all are reasons
            return rule, str(exc)
        upstream = self._upstream(rule.base_url, credentials)
        try:
            await upstream.check()
        except UpstreamError as failed:
            return rule, f"The upstream registry could not be used: {failed}"
        finally:
            await upstream.close()
        return rule, None


class PullThroughCache:
    """The pull path of the repositories cache rules own, in one region."""

    def __init__(
        self,
        metadata: MetadataStore,
        blob_store: BlobStore,
        repositories: RepositoryService,
        images: ImageService,
        clock: Clock,
        *,
        refresh_interval: timedelta = DEFAULT_REFRESH_INTERVAL,
        credentials: CredentialSource = no_secrets,
        upstream: UpstreamFactory | None = None,
    ) -> None:
        self._metadata = metadata
        self._blob_store = blob_store
        self._repositories = repositories
        self._images = images
        self._clock = clock
        self._refresh = refresh_interval
        self._credentials = credentials
        self._make_upstream = upstream or _oci_upstream
        self._rules: dict[str, tuple[float, list[CacheRule]]] = {}
        self._clients: dict[tuple[str, str, str | None], UpstreamRegistry] = {}
        self._in_flight: dict[tuple[str, ...], asyncio.Future[None]] = {}

    def forget_rules(self, registry_id: str) -> None:
        self._rules.pop(registry_id, None)

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    async def rule_for(self, registry_id: str, name: str) -> CacheRule | None:
        """The rule that owns ``name``, if any."""
        loop = asyncio.get_running_loop()
        remembered = self._rules.get(registry_id)
        if remembered is None or remembered[0] < loop.time():
            async with self._metadata.read() as tx:
                rules = await tx.list_cache_rules(registry_id)
            remembered = (loop.time() + RULES_MEMORY_SECONDS, rules)
            self._rules[registry_id] = remembered
        return rule_for(remembered[1], name)

    # -- manifests ----------------------------------------------------------------------

    async def manifest(
        self, registry_id: str, name: str, reference: Reference, authorize: Authorize
    ) -> ManifestRecord | None:
        """The manifest a pull of a cache-owned name gets (see the module docstring); None
        when no rule owns ``name`` (the caller serves it as any other). Raises
        RepositoryNotFound, ManifestUnknown, UpstreamUnavailable."""
        rule = await self.rule_for(registry_id, name)
        if rule is None:
            return None
        repository, cached, checked_at = await self._cached(registry_id, name, reference)
        now = self._clock()
        if cached is not None and (
            reference.digest is not None
            or (checked_at is not None and now - checked_at < self._refresh)
        ):
            return cached
        if repository is None:
            try:
                await authorize(Action.CREATE_REPOSITORY)
            except AccessDenied:
                raise RepositoryNotFound(
                    f"The repository with name '{name}' does not exist in the registry with "
                    f"id '{registry_id}'"
                ) from None
        try:
            await authorize("ecr:BatchImportUpstreamImage")
        except AccessDenied:
            if cached is not None:
                return cached
            raise ManifestUnknown("Requested image not found") from None
        key = (registry_id, name, str(reference))
        async with self._single_flight(key) as leader:
            if not leader:  # another request imported it meanwhile
                _, again, _ = await self._cached(registry_id, name, reference)
                if again is not None:
                    return again
            return await self._refresh_or_import(registry_id, name, rule, reference, cached)

    async def _cached(
        self, registry_id: str, name: str, reference: Reference
    ) -> tuple[Repository | None, ManifestRecord | None, datetime | None]:
        async with self._metadata.read() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            if repository is None:
                return None, None, None
            if reference.digest is not None:
                return repository, await tx.get_manifest(repository.id, reference.digest), None
            assert reference.tag is not None
            record = await tx.resolve_tag(repository.id, reference.tag)
            upstream_tag = await tx.get_upstream_tag(repository.id, reference.tag)
        checked = None if upstream_tag is None else upstream_tag.checked_at
        return repository, record, checked

    async def _refresh_or_import(
        self,
        registry_id: str,
        name: str,
        rule: CacheRule,
        reference: Reference,
        cached: ManifestRecord | None,
    ) -> ManifestRecord:
        upstream_name = rule.upstream_repository(name)
        try:
            upstream = await self._client(registry_id, rule)
            if cached is not None and reference.tag is not None:
                digest = await upstream.head_manifest(upstream_name, reference.tag)
                if digest == cached.digest:
                    await self._checked(registry_id, name, reference.tag, digest)
                    return cached
            fetched = await upstream.get_manifest(upstream_name, str(reference))
            return await self._import(registry_id, name, rule, reference, fetched, upstream)
        except UpstreamNotFound:
            if cached is None:
                raise ManifestUnknown("Requested image not found") from None
            assert reference.tag is not None
            await self._checked(registry_id, name, reference.tag, cached.digest)
            return cached
        except (UpstreamError, DigestMismatch) as failed:
            log.warning(
                "pull-through cache %s: upstream %s failed: %s", name, rule.base_url, failed
            )
            if cached is not None:
                return cached
            raise UpstreamUnavailable(
                f"the upstream registry of '{name}' is unavailable; nothing is cached yet"
            ) from None

    async def _import(
        self,
        registry_id: str,
        name: str,
        rule: CacheRule,
        reference: Reference,
        fetched: UpstreamManifest,
        upstream: UpstreamRegistry,
    ) -> ManifestRecord:
        upstream_name = rule.upstream_repository(name)
        await self._repositories.ensure(registry_id, name, AppliedFor.PULL_THROUGH_CACHE)
        parsed = parse_manifest(fetched.payload, fetched.media_type or None)
        for child in parsed.manifests[:MAX_CHILDREN]:
            if await self._has_manifest(registry_id, name, child.digest):
                continue
            found = await upstream.get_manifest(upstream_name, str(child.digest))
            await self._store(registry_id, name, rule, Reference(digest=found.digest), found)
        await self._store(registry_id, name, rule, reference, fetched)
        if reference.tag is not None:
            await self._checked(registry_id, name, reference.tag, fetched.digest)
        async with self._metadata.transaction() as tx:
            # The rest of the image (the blobs of platforms no client pulls) in the
            # background, so that the cache holds the whole image, as ECR's import does.
            await tx.enqueue_job(
                FILL_JOB,
                {
                    "region": self._metadata.region,
                    "registry_id": registry_id,
                    "repository": name,
                    "digest": str(fetched.digest),
                },
                self._clock(),
                dedupe_key=f"{FILL_JOB}:{self._metadata.region}:{registry_id}:{name}:{fetched.digest}",
            )
        return await self._images.get_manifest(registry_id, name, Reference(digest=fetched.digest))

    async def handle_fill_job(self, job: Job, progress: Callable[..., Any]) -> None:
        """Fetch every blob of an imported image (an index's children included) that the
        store does not hold yet. Raises UpstreamUnavailable (the job retries later)."""
        registry_id = str(job.payload["registry_id"])
        name = str(job.payload["repository"])
        rule = await self.rule_for(registry_id, name)
        if rule is None:
            return  # the rule is gone: nothing to fill from
        digests = await self._missing_blobs(registry_id, name, Digest.parse(job.payload["digest"]))
        for done, digest in enumerate(digests, start=1):
            await self.fetch_blob(registry_id, name, rule, digest, None)
            await progress({"blobs": len(digests), "fetched": done})

    async def _missing_blobs(self, registry_id: str, name: str, digest: Digest) -> list[Digest]:
        async with self._metadata.read() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            record = None if repository is None else await tx.get_manifest(repository.id, digest)
            if repository is None or record is None:
                return []
            records = [record]
            for child in parse_manifest(record.payload, record.media_type).manifests[:MAX_CHILDREN]:
                found = await tx.get_manifest(repository.id, child.digest)
                if found is not None:
                    records.append(found)
            wanted: dict[Digest, None] = {}
            for each in records:
                for descriptor in parse_manifest(each.payload, each.media_type).blob_references():
                    wanted.setdefault(descriptor.digest)
            linked = await tx.linked_blob_sizes(repository.id, wanted)
        return [d for d in wanted if d not in linked]

    async def _store(
        self,
        registry_id: str,
        name: str,
        rule: CacheRule,
        reference: Reference,
        fetched: UpstreamManifest,
    ) -> None:
        await self._images.put_manifest(
            registry_id, name, reference, fetched.payload, fetched.media_type or None, cached=True
        )
        async with self._metadata.transaction() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            if repository is not None:
                await tx.record_upstream_image(
                    repository.id,
                    fetched.digest,
                    rule.base_url,
                    rule.upstream_repository(name),
                    self._clock(),
                )

    async def _has_manifest(self, registry_id: str, name: str, digest: Digest) -> bool:
        async with self._metadata.read() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            return (
                repository is not None
                and (await tx.get_manifest(repository.id, digest)) is not None
            )

    async def _checked(self, registry_id: str, name: str, tag: str, digest: Digest) -> None:
        async with self._metadata.transaction() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            if repository is not None:
                await tx.put_upstream_tag(repository.id, tag, digest, self._clock())

    async def origin(self, registry_id: str, name: str, digest: Digest) -> UpstreamImage | None:
        """Where a cached image came from (None: it was not imported by a cache)."""
        async with self._metadata.read() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            if repository is None:
                return None
            return await tx.get_upstream_image(repository.id, digest)

    # -- blobs ----------------------------------------------------------------------------

    async def wants_blob(self, registry_id: str, name: str, digest: Digest) -> CacheRule | None:
        """The rule to fetch ``digest`` with: a rule owns ``name`` and a manifest cached
        there references the blob. None otherwise (the blob is simply unknown)."""
        rule = await self.rule_for(registry_id, name)
        if rule is None:
            return None
        async with self._metadata.read() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            if repository is None or not await tx.blob_users(repository.id, digest):
                return None
        return rule

    async def fetch_blob(
        self,
        registry_id: str,
        name: str,
        rule: CacheRule,
        digest: Digest,
        sink: BlobSink | None,
    ) -> BlobRecord | None:
        """Fetch the blob from the upstream into the store, handing each chunk to ``sink``
        as it arrives (the client's response), and link it here once its digest is verified.
        Returns the blob; None when another request fetched it meanwhile (``sink`` got
        nothing: serve it from the store). Raises UpstreamUnavailable, DigestMismatch (the
        bytes were not the blob's: nothing is kept), ManifestUnknown (gone upstream)."""
        async with self._single_flight((registry_id, "blob", str(digest))) as leader:
            if not leader or await self._holds(registry_id, name, digest):
                # Another request fetched it meanwhile, or a fetch that just ended did.
                return None
            return await self._fetch_blob(registry_id, name, rule, digest, sink)

    async def _holds(self, registry_id: str, name: str, digest: Digest) -> bool:
        async with self._metadata.read() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            return (
                repository is not None
                and (await tx.get_linked_blob(repository.id, digest)) is not None
            )

    async def _fetch_blob(
        self,
        registry_id: str,
        name: str,
        rule: CacheRule,
        digest: Digest,
        sink: BlobSink | None,
    ) -> BlobRecord:
        upstream = await self._client(registry_id, rule)
        upload_id = str(uuid.uuid4())  # a staging area with no session: GC spares it a while
        await self._blob_store.start_upload(upload_id)
        hasher = StreamingHasher(digest.algorithm)
        try:
            try:
                async with upstream.blob(rule.upstream_repository(name), digest) as stream:
                    if sink is not None:
                        await sink.start(stream.size)
                    size = await self._blob_store.write_upload(
                        upload_id, 0, _tee(stream.chunks(), hasher, sink)
                    )
            except UpstreamNotFound:
                raise ManifestUnknown(f"blob {digest} is gone from the upstream") from None
            except UpstreamError as failed:
                raise UpstreamUnavailable(f"the upstream registry failed: {failed}") from None
            hasher.verify(digest)
            await self._blob_store.commit_upload(upload_id, digest, size)
        except BaseException:
            await self._blob_store.cancel_upload(upload_id)
            raise
        now = self._clock()
        async with self._metadata.transaction() as tx:
            repository = await tx.get_repository(registry_id, RepositoryName(name))
            if repository is None:
                raise RepositoryNotFound(f"repository {name} was deleted during the fetch")
            await tx.lock_blob_files([digest])
            await tx.put_blob(digest, size, now)
            await tx.link_blob(repository.id, digest, now)
            blob = await tx.get_blob(digest)
        assert blob is not None
        return blob

    # -- helpers ----------------------------------------------------------------------------

    async def _client(self, registry_id: str, rule: CacheRule) -> UpstreamRegistry:
        key = (registry_id, rule.base_url, rule.credential_arn)
        client = self._clients.get(key)
        if client is None:
            credentials = None
            if rule.credential_arn is not None:
                try:
                    credentials = await self._credentials(registry_id, rule.credential_arn)
                except (SecretNotFound, AccessDenied) as refused:
                    raise UpstreamUnreachable(f"credentials: {refused.message}") from None
            client = self._clients[key] = self._make_upstream(rule.base_url, credentials)
        return client

    @asynccontextmanager
    async def _single_flight(self, key: tuple[str, ...]) -> AsyncIterator[bool]:
        """True for the one request that does the work; the others wait for it, then get
        False (and look for its result)."""
        running = self._in_flight.get(key)
        if running is not None:
            await asyncio.shield(running)
            yield False
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = done
        try:
            yield True
        finally:
            del self._in_flight[key]
            done.set_result(None)


class BlobSink:
    """Where a fetched blob's bytes go as they arrive: the client's response. A client that
    goes away stops receiving; the fetch goes on, so that the cache still gets the blob."""

    def __init__(
        self,
        start: Callable[[int | None], Awaitable[None]],
        write: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self._start = start
        self._write = write
        self.broken = False

    async def start(self, size: int | None) -> None:
        await self._start(size)

    async def write(self, chunk: bytes) -> None:
        if self.broken:
            return
        try:
            await self._write(chunk)
        except (ConnectionError, RuntimeError):
            self.broken = True


async def _tee(
    chunks: AsyncIterator[bytes], hasher: StreamingHasher, sink: BlobSink | None
) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        hasher.update(chunk)
        if sink is not None:
            await sink.write(chunk)
        yield chunk


def _oci_upstream(base_url: str, credentials: BasicCredentials | None) -> UpstreamRegistry:
    return OciRegistryClient(base_url, credentials)


def _not_found(registry_id: str, prefix: str) -> PullThroughCacheRuleNotFound:
    return PullThroughCacheRuleNotFound(
        f"The pull through cache rule with prefix '{prefix}' does not exist in the registry "
        f"with id '{registry_id}'."
    )


def _already_exists(registry_id: str, prefix: str) -> PullThroughCacheRuleAlreadyExists:
    return PullThroughCacheRuleAlreadyExists(
        f"A pull through cache rule with prefix '{prefix}' already exists in the registry "
        f"with id '{registry_id}'."
    )
