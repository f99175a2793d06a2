"""The lifecycle service on SQLite: a run expires exactly what the preview of the same policy
named, over random repositories; dry runs delete nothing; runs leave an audit trail."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    LifecyclePolicyInvalid,
    LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress,
    LifecyclePolicyPreviewNotFound,
)
from moorage.domain.models import ManifestRecord, ManifestReference, ReferenceKind
from moorage.ports.lifecycle import PreviewStatus
from moorage.services.images import ImageService
from moorage.services.lifecycle import LifecycleService
from moorage.services.repositories import RepositoryService
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store

REGISTRY = "123456789012"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
TAGS = ["prod-1", "prod-2", "beta-1", "beta-2", "dev", "latest", "v1", "v2"]
POLICIES = [
    [
        {"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan"},
        {"tagStatus": "tagged", "tagPatternList": ["beta*"], "countType": "sinceImagePushed"},
        {"tagStatus": "untagged", "countType": "sinceImagePushed"},
        {"tagStatus": "any", "countType": "imageCountMoreThan"},
    ],
    [
        {"tagStatus": "untagged", "countType": "imageCountMoreThan"},
        {"tagStatus": "any", "countType": "sinceImagePulled"},
    ],
]


def policy_text(selections: list[dict[str, object]], rng: random.Random) -> str:
    rules = []
    for priority, selection in enumerate(selections, start=1):
        chosen = dict(selection)
        if chosen["countType"] != "imageCountMoreThan":
            chosen["countUnit"] = "days"
        chosen["countNumber"] = rng.randint(1, 4)
        rules.append({"rulePriority": priority, "selection": chosen, "action": {"type": "expire"}})
    return json.dumps({"rules": rules}, indent=1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}")
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def lifecycle(store: SqlMetadataStore, clock: Clock) -> AsyncIterator[LifecycleService]:
    repositories = RepositoryService(store, clock)
    images = ImageService(store, repositories, clock)
    yield LifecycleService(store, images, clock)
    await images.close()


async def random_repository(store: SqlMetadataStore, name: str, rng: random.Random) -> set[str]:
    """Images with random tags, ages and pulls, some listed by an index; their digests."""
    async with store.transaction() as tx:
        repository = await tx.create_repository(REGISTRY, name, NOW)
        digests = []
        for n in range(rng.randint(0, 25)):
            payload = f"{name} image {n}".encode()
            record = ManifestRecord(
                repository_id=repository.id,
                digest=Digest.of(payload),
                media_type=OCI_MANIFEST,
                size=len(payload),
                payload=payload,
                pushed_at=NOW - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23)),
                annotations={},
            )
            await tx.put_manifest(record, [])
            if rng.random() < 0.3:
                await tx.touch_manifest_pull(
                    repository.id, record.digest, NOW - timedelta(days=rng.randint(0, 10))
                )
            digests.append(record.digest)
        if digests and rng.random() < 0.5:
            payload = f"{name} index".encode()
            children = rng.sample(digests, k=min(2, len(digests)))
            index = ManifestRecord(
                repository_id=repository.id,
                digest=Digest.of(payload),
                media_type=OCI_INDEX,
                size=len(payload),
                payload=payload,
                pushed_at=NOW - timedelta(days=rng.randint(0, 12)),
                annotations={},
            )
            references = [ManifestReference(c, ReferenceKind.MANIFEST) for c in children]
            await tx.put_manifest(index, references)
            digests.append(index.digest)
        for tag in TAGS:
            if digests and rng.random() < 0.7:
                await tx.put_tag(repository.id, tag, rng.choice(digests), NOW)
    return {str(d) for d in digests}


async def remaining(store: SqlMetadataStore, name: str) -> set[str]:
    async with store.read() as tx:
        repository = await tx.get_repository(REGISTRY, name)
        assert repository is not None
        return {str(c.digest) for c in await tx.lifecycle_candidates(repository.id)}


@pytest.mark.parametrize("seed", range(12))
async def test_a_run_expires_exactly_what_the_preview_named(
    store: SqlMetadataStore, lifecycle: LifecycleService, seed: int
) -> None:
    rng = random.Random(seed)
    name = f"repo-{seed}"
    before = await random_repository(store, name, rng)
    text = policy_text(POLICIES[seed % len(POLICIES)], rng)
    await lifecycle.put_policy(REGISTRY, name, text)
    preview = await lifecycle.start_preview(REGISTRY, name)
    assert preview.status is PreviewStatus.IN_PROGRESS
    assert await lifecycle.complete_preview(preview.repository_id, preview.started_at)
    page = await lifecycle.get_preview(REGISTRY, name, limit=100)
    assert page.preview.status is PreviewStatus.COMPLETE
    named = {str(r.digest) for r in page.results}
    assert page.expiring == len(named)

    [dry] = await lifecycle.run(repository=name, dry_run=True)
    assert await remaining(store, name) == before
    assert {str(i.digest) for i in dry.images} == named
    assert not any(i.deleted for i in dry.images)

    [run] = await lifecycle.run(repository=name)
    assert {str(i.digest) for i in run.images if i.deleted} == named
    assert await remaining(store, name) == before - named
    record = await lifecycle.get_policy(REGISTRY, name)
    assert record.last_evaluated_at is not None
    async with store.read() as tx:
        trail = await tx.list_lifecycle_runs(repository_name=name)
    assert [r.dry_run for r in trail] == [False, True]


async def test_errors(store: SqlMetadataStore, lifecycle: LifecycleService, clock: Clock) -> None:
    async with store.transaction() as tx:
        await tx.create_repository(REGISTRY, "web", NOW)
    with pytest.raises(LifecyclePolicyNotFound) as missing:
        await lifecycle.get_policy(REGISTRY, "web")
    assert missing.value.message == (
        "Lifecycle policy does not exist for the repository with name 'web' in the registry "
        f"with id '{REGISTRY}'"
    )
    with pytest.raises(LifecyclePolicyNotFound):
        await lifecycle.delete_policy(REGISTRY, "web")
    with pytest.raises(LifecyclePolicyNotFound):
        await lifecycle.start_preview(REGISTRY, "web")
    with pytest.raises(LifecyclePolicyPreviewNotFound):
        await lifecycle.get_preview(REGISTRY, "web")
    with pytest.raises(LifecyclePolicyInvalid):
        await lifecycle.put_policy(REGISTRY, "web", "{}" + " " * 100)
    text = policy_text(POLICIES[1], random.Random(0))
    await lifecycle.start_preview(REGISTRY, "web", text)
    with pytest.raises(LifecyclePolicyPreviewInProgress):
        await lifecycle.start_preview(REGISTRY, "web", text)
    clock.now += timedelta(hours=1)  # the first preview's job was lost: it no longer blocks
    again = await lifecycle.start_preview(REGISTRY, "web", text)
    assert again.started_at == clock.now
