"""The lifecycle service on SQLite: a run expires exactly what the preview of the same policy
named, over random repositories; dry runs delete nothing; runs leave an audit trail."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    InvalidParameter,
    LifecyclePolicyInvalid,
    LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress,
    LifecyclePolicyPreviewNotFound,
)
from moorage.domain.jobs import Job, JobState
from moorage.domain.lifecycle import Candidate
from moorage.domain.models import ManifestRecord, ManifestReference, ReferenceKind, Repository
from moorage.ports.lifecycle import LifecycleRun, PreviewResult, PreviewStatus
from moorage.ports.metadata import MetadataTransaction
from moorage.services import lifecycle as lifecycle_module
from moorage.services.images import ExpectedImage, ImageId, ImageService, UnchangedDeleteResult
from moorage.services.lifecycle import (
    PREVIEW_EXPIRE_AFTER,
    PREVIEW_JOB,
    PREVIEW_STALE_AFTER,
    LifecycleService,
)
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


# -- helpers for the tests below ---------------------------------------------------------------

UNTAGGED_OLDER_THAN_7_DAYS = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)
KEEP_ONE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the newest image",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


async def old_images(
    store: SqlMetadataStore, name: str, count: int, *tags: str
) -> tuple[Repository, list[Digest]]:
    """A repository of ``count`` images pushed 30 days ago and more (the first is the newest),
    the first ``len(tags)`` of them tagged one tag each; their digests."""
    async with store.transaction() as tx:
        repository = await tx.create_repository(REGISTRY, name, NOW)
        digests = []
        for n in range(count):
            payload = f"{name} old image {n}".encode()
            record = ManifestRecord(
                repository_id=repository.id,
                digest=Digest.of(payload),
                media_type=OCI_MANIFEST,
                size=len(payload),
                payload=payload,
                pushed_at=NOW - timedelta(days=30, minutes=n),
                annotations={},
            )
            await tx.put_manifest(record, [])
            digests.append(record.digest)
        for tag, digest in zip(tags, digests, strict=False):
            await tx.put_tag(repository.id, tag, digest, NOW)
    return repository, digests


class _Recorder:
    """A transaction that notes whether ``lifecycle_candidates`` was read through it."""

    def __init__(self, tx: MetadataTransaction) -> None:
        self._tx = tx
        self.read_candidates = False

    async def lifecycle_candidates(
        self, repository_id: int, *, after: Digest | None = None, limit: int | None = None
    ) -> list[Candidate]:
        self.read_candidates = True
        return await self._tx.lifecycle_candidates(repository_id, after=after, limit=limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def change_after_evaluation(
    monkeypatch: pytest.MonkeyPatch, store: SqlMetadataStore, change: Any
) -> None:
    """Run ``change(tx)`` in a transaction of its own right after each read transaction that
    read lifecycle candidates: between a run's evaluation and its deletions."""
    real_read = store.read

    @asynccontextmanager
    async def read() -> AsyncIterator[Any]:
        async with real_read() as tx:
            recorder = _Recorder(tx)
            yield recorder
        if recorder.read_candidates:
            async with store.transaction() as write:
                await change(write)

    monkeypatch.setattr(store, "read", read)


# -- a run against an image that changed after the evaluation ----------------------------------


async def test_a_run_keeps_an_untagged_image_tagged_after_it_was_evaluated(
    store: SqlMetadataStore, lifecycle: LifecycleService, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository, [image, other] = await old_images(store, "web", 2)
    await lifecycle.put_policy(REGISTRY, "web", UNTAGGED_OLDER_THAN_7_DAYS)

    async def tag_it(tx: MetadataTransaction) -> None:  # a user tags the image "prod" meanwhile
        await tx.put_tag(repository.id, "prod", image, NOW)

    change_after_evaluation(monkeypatch, store, tag_it)
    [run] = await lifecycle.run(repository="web")
    monkeypatch.undo()

    assert {(i.digest, i.tags, i.deleted) for i in run.images} == {
        (image, (), False),
        (other, (), True),
    }
    async with store.read() as tx:
        assert (await tx.resolve_tag(repository.id, "prod")) is not None
        assert await tx.get_manifest(repository.id, other) is None
    [audited] = await _trail(store, "web")
    assert {(i.digest, i.deleted) for i in audited.images} == {(image, False), (other, True)}


async def test_a_run_keeps_an_image_whose_tags_changed_after_it_was_evaluated(
    store: SqlMetadataStore, lifecycle: LifecycleService, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository, [newest, older, oldest] = await old_images(store, "web", 3, "v3", "v2", "v1")
    await lifecycle.put_policy(REGISTRY, "web", KEEP_ONE)

    async def retag(tx: MetadataTransaction) -> None:
        await tx.put_tag(repository.id, "v2", newest, NOW)  # v2 moves away from ``older``
        await tx.put_tag(repository.id, "stable", oldest, NOW)  # ``oldest`` gains a tag

    change_after_evaluation(monkeypatch, store, retag)
    [run] = await lifecycle.run(repository="web")
    monkeypatch.undo()

    assert {(i.digest, i.tags, i.deleted) for i in run.images} == {
        (older, ("v2",), False),
        (oldest, ("v1",), False),
    }
    async with store.read() as tx:
        assert sorted(await tx.tags_of(repository.id, oldest)) == ["stable", "v1"]
        assert await tx.tags_of(repository.id, older) == []
    # Evaluated again, the untagged ``older`` and ``oldest`` (no longer the newest) go.
    [again] = await lifecycle.run(repository="web")
    assert {(i.digest, i.deleted) for i in again.images} == {(older, True), (oldest, True)}


async def test_delete_unchanged_says_why_it_kept_each_image(
    store: SqlMetadataStore, lifecycle: LifecycleService
) -> None:
    repository, [tagged, untagged, listed] = await old_images(store, "web", 3, "v1")
    index = await put_index(store, repository, listed)
    gone = Digest.of(b"never pushed")
    images = lifecycle._images
    result = await images.delete_unchanged(
        REGISTRY,
        "web",
        [
            ExpectedImage(tagged, ()),  # it has a tag now
            ExpectedImage(untagged, ()),
            ExpectedImage(listed, ()),
            ExpectedImage(gone, ()),
        ],
    )
    assert result.deleted == [untagged]
    assert dict(result.kept) == {
        tagged: "its tags changed to ['v1']",
        listed: f"Requested image referenced by manifest list: [{index}]",
        gone: "Requested image not found",
    }
    again = await images.delete_unchanged(REGISTRY, "web", [ExpectedImage(tagged, ("v1",))])
    assert again.deleted == [tagged]


async def put_index(store: SqlMetadataStore, repository: Repository, *children: Digest) -> Digest:
    payload = b"an index of " + b", ".join(str(c).encode() for c in children)
    async with store.transaction() as tx:
        await tx.put_manifest(
            ManifestRecord(
                repository_id=repository.id,
                digest=Digest.of(payload),
                media_type=OCI_INDEX,
                size=len(payload),
                payload=payload,
                pushed_at=NOW,
                annotations={},
            ),
            [ManifestReference(c, ReferenceKind.MANIFEST) for c in children],
        )
    return Digest.of(payload)


async def test_delete_unchanged_decides_in_the_order_given(
    store: SqlMetadataStore, lifecycle: LifecycleService
) -> None:
    """As if deleted one after another: an index deleted earlier in the batch no longer keeps
    the images it lists; an image named twice is gone the second time."""
    repository, [first, second, third] = await old_images(store, "web", 3)
    early = await put_index(store, repository, first)
    late = await put_index(store, repository, second, third)
    nested = await put_index(store, repository, late)
    result = await lifecycle._images.delete_unchanged(
        REGISTRY,
        "web",
        [
            ExpectedImage(early, ()),
            ExpectedImage(first, ()),  # its only index went just before
            ExpectedImage(second, ()),  # ``late`` goes after it
            ExpectedImage(nested, ()),
            ExpectedImage(late, ()),  # ``nested`` went just before
            ExpectedImage(third, ()),
            ExpectedImage(first, ()),  # already deleted
        ],
    )
    assert result.deleted == [early, first, nested, late, third]
    assert result.kept == [
        (second, f"Requested image referenced by manifest list: [{late}]"),
        (first, "Requested image not found"),
    ]
    async with store.read() as tx:
        assert await tx.count_manifests(repository.id) == 1


async def test_delete_unchanged_runs_as_many_statements_for_many_images_as_for_one(
    store: SqlMetadataStore, lifecycle: LifecycleService
) -> None:
    repository, digests = await old_images(store, "web", 101)
    await put_index(store, repository, digests[0])
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    async def statements_to_delete(images: Sequence[Digest]) -> int:
        statements.clear()
        event.listen(Engine, "before_cursor_execute", count)
        try:
            await lifecycle._images.delete_unchanged(
                REGISTRY, "web", [ExpectedImage(d, ()) for d in images]
            )
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        return len(statements)

    # The first is listed by an index (kept); the others are deleted.
    few = await statements_to_delete(digests[:2])
    many = await statements_to_delete(digests[2:])
    assert 0 < few == many


async def _trail(store: SqlMetadataStore, name: str) -> list[LifecycleRun]:
    async with store.read() as tx:
        return await tx.list_lifecycle_runs(repository_name=name)


# -- previews that fail, go stale, or expire -----------------------------------------------------


def preview_job(started_at: datetime, repository_id: int, attempts: int) -> Job:
    return Job(
        id=1,
        kind=PREVIEW_JOB,
        payload={"repository_id": repository_id, "started_at": started_at.isoformat()},
        state=JobState.RUNNING,
        attempts=attempts,
        max_attempts=3,
        run_after=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_the_last_failed_attempt_of_a_preview_job_finishes_it_failed(
    store: SqlMetadataStore, lifecycle: LifecycleService, monkeypatch: pytest.MonkeyPatch
) -> None:
    await old_images(store, "web", 1)
    preview = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)

    async def broken(repository_id: int, started_at: datetime) -> bool:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(lifecycle, "complete_preview", broken)
    for attempt in (1, 2):  # the runner will try again: the preview stays in progress
        with pytest.raises(RuntimeError):
            await lifecycle.handle_preview_job(
                preview_job(preview.started_at, preview.repository_id, attempt)
            )
        page = await lifecycle.get_preview(REGISTRY, "web")
        assert page.preview.status is PreviewStatus.IN_PROGRESS
    with pytest.raises(RuntimeError):
        await lifecycle.handle_preview_job(
            preview_job(preview.started_at, preview.repository_id, 3)
        )
    page = await lifecycle.get_preview(REGISTRY, "web")
    assert page.preview.status is PreviewStatus.FAILED
    assert page.results == []
    await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)  # a new one may start


async def test_a_preview_in_progress_for_too_long_is_reported_failed(
    store: SqlMetadataStore, lifecycle: LifecycleService, clock: Clock
) -> None:
    await old_images(store, "web", 2)
    preview = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)
    clock.now += PREVIEW_STALE_AFTER
    page = await lifecycle.get_preview(REGISTRY, "web")
    assert page.preview.status is PreviewStatus.IN_PROGRESS
    clock.now += timedelta(seconds=1)  # no worker ran its job
    page = await lifecycle.get_preview(REGISTRY, "web")
    assert page.preview.status is PreviewStatus.FAILED
    # Its job, should it run now after all, does not turn it COMPLETE.
    assert await lifecycle.complete_preview(preview.repository_id, preview.started_at)
    page = await lifecycle.get_preview(REGISTRY, "web")
    assert page.preview.status is PreviewStatus.FAILED
    assert (page.results, page.expiring) == ([], 0)


async def test_a_complete_preview_is_reported_expired_a_day_after(
    store: SqlMetadataStore, lifecycle: LifecycleService, clock: Clock
) -> None:
    await old_images(store, "web", 2)
    preview = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)
    assert await lifecycle.complete_preview(preview.repository_id, preview.started_at)
    clock.now += PREVIEW_EXPIRE_AFTER
    page = await lifecycle.get_preview(REGISTRY, "web")
    assert (page.preview.status, page.expiring, len(page.results)) == (
        PreviewStatus.COMPLETE,
        1,
        1,
    )
    clock.now += timedelta(seconds=1)
    page = await lifecycle.get_preview(REGISTRY, "web")
    assert (page.preview.status, page.expiring, len(page.results)) == (
        PreviewStatus.EXPIRED,
        1,
        1,
    )
    again = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)
    assert again.status is PreviewStatus.IN_PROGRESS


async def test_a_failed_preview_stays_failed(
    store: SqlMetadataStore, lifecycle: LifecycleService, clock: Clock
) -> None:
    await old_images(store, "web", 1)
    preview = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)
    async with store.transaction() as tx:
        await tx.finish_lifecycle_preview(
            preview.repository_id, preview.started_at, PreviewStatus.FAILED, [], NOW
        )
    clock.now += PREVIEW_EXPIRE_AFTER * 2
    page = await lifecycle.get_preview(REGISTRY, "web")
    assert page.preview.status is PreviewStatus.FAILED


# -- GetLifecyclePolicyPreview's parameters ------------------------------------------------------


async def test_image_ids_cannot_come_with_a_cursor_or_a_limit(
    store: SqlMetadataStore, lifecycle: LifecycleService
) -> None:
    _, [_, old] = await old_images(store, "web", 2)
    preview = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)
    await lifecycle.complete_preview(preview.repository_id, preview.started_at)
    named = [ImageId(str(old))]
    for extra in ({"limit": 10}, {"after": str(old)}):
        with pytest.raises(InvalidParameter) as refused:
            await lifecycle.get_preview(REGISTRY, "web", image_ids=named, **extra)  # type: ignore[arg-type]
        assert refused.value.message == (
            "Invalid parameter: nextToken and maxResults cannot be used with imageIds"
        )
    page = await lifecycle.get_preview(REGISTRY, "web", image_ids=named)
    assert [r.digest for r in page.results] == [old]


async def test_image_ids_by_tag_are_found_on_any_page_of_results(
    store: SqlMetadataStore, lifecycle: LifecycleService, monkeypatch: pytest.MonkeyPatch
) -> None:
    tags = [f"v{n}" for n in range(9)]
    _, digests = await old_images(store, "web", 9, *tags)
    preview = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)
    await lifecycle.complete_preview(preview.repository_id, preview.started_at)
    monkeypatch.setattr(lifecycle_module, "_NAMED_TAG_PAGE", 2)
    expiring = sorted(digests[1:], key=str)  # the newest, v0, is kept
    by_digest = {d: t for d, t in zip(digests, tags, strict=True)}
    wanted = [by_digest[expiring[0]], by_digest[expiring[-1]], "v0", "nothing"]
    page = await lifecycle.get_preview(
        REGISTRY, "web", image_ids=[ImageId(tag=tag) for tag in wanted]
    )
    assert [r.digest for r in page.results] == [expiring[0], expiring[-1]]
    untagged_only = await lifecycle.get_preview(
        REGISTRY, "web", image_ids=[ImageId(tag=tag) for tag in wanted], tagged=False
    )
    assert untagged_only.results == []


# -- the event loop stays free ------------------------------------------------------------------


async def test_evaluation_runs_off_the_event_loop(
    store: SqlMetadataStore, lifecycle: LifecycleService, monkeypatch: pytest.MonkeyPatch
) -> None:
    await old_images(store, "web", 2)
    on_the_loop: list[bool] = []
    real_plan = lifecycle_module.plan

    def plan(text: str, candidates: Sequence[Candidate], now: datetime) -> list[PreviewResult]:
        try:
            asyncio.get_running_loop()
            on_the_loop.append(True)
        except RuntimeError:
            on_the_loop.append(False)
        return real_plan(text, candidates, now)

    monkeypatch.setattr(lifecycle_module, "plan", plan)
    preview = await lifecycle.start_preview(REGISTRY, "web", KEEP_ONE)
    assert await lifecycle.complete_preview(preview.repository_id, preview.started_at)
    await lifecycle.put_policy(REGISTRY, "web", KEEP_ONE)
    [run] = await lifecycle.run(repository="web")
    assert [i.deleted for i in run.images] == [True]
    assert on_the_loop == [False, False]


# -- scheduled runs over many repositories ------------------------------------------------------


async def test_a_failing_repository_does_not_stop_the_others(
    store: SqlMetadataStore, lifecycle: LifecycleService, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("aa", "bb", "cc"):
        await old_images(store, name, 2)
        await lifecycle.put_policy(REGISTRY, name, KEEP_ONE)
    real_run_one = lifecycle._run_one
    failing = {"aa"}

    async def run_one(repository: Repository, *, dry_run: bool) -> LifecycleRun | None:
        if repository.name in failing:
            raise RuntimeError(f"{repository.name} is broken")
        return await real_run_one(repository, dry_run=dry_run)

    monkeypatch.setattr(lifecycle, "_run_one", run_one)
    runs = await lifecycle.run()
    assert [run.repository_name for run in runs] == ["bb", "cc"]
    assert all(image.deleted for run in runs for image in run.images)

    # Every repository failing fails the job (it is retried), and records nothing.
    failing.update({"bb", "cc"})
    with pytest.raises(RuntimeError, match="is broken"):
        await lifecycle.handle_run_job(
            Job(
                id=2,
                kind=lifecycle_module.RUN_JOB,
                payload={},
                state=JobState.RUNNING,
                attempts=1,
                max_attempts=3,
                run_after=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    assert [len(await _trail(store, name)) for name in ("aa", "bb", "cc")] == [0, 1, 1]


async def test_a_run_that_fails_midway_audits_what_it_deleted(
    store: SqlMetadataStore, lifecycle: LifecycleService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, digests = await old_images(store, "web", 151)
    await lifecycle.put_policy(REGISTRY, "web", KEEP_ONE)
    images = lifecycle._images
    real = images.delete_unchanged
    calls = 0

    async def second_batch_fails(
        registry_id: str, name: str, expected: Sequence[ExpectedImage]
    ) -> UnchangedDeleteResult:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database went away")
        return await real(registry_id, name, expected)

    monkeypatch.setattr(images, "delete_unchanged", second_batch_fails)
    with pytest.raises(RuntimeError):
        await lifecycle.run(repository="web")
    [partial] = await _trail(store, "web")
    assert len(partial.images) == 100
    assert all(image.deleted for image in partial.images)
    assert (await lifecycle.get_policy(REGISTRY, "web")).last_evaluated_at is not None

    monkeypatch.undo()  # the retry deletes, and audits, the rest
    [rest] = await lifecycle.run(repository="web")
    assert len(rest.images) == 50
    assert {i.digest for i in partial.images} | {i.digest for i in rest.images} == set(digests[1:])
    assert await remaining(store, "web") == {str(digests[0])}
