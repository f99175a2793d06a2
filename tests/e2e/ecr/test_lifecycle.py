"""Lifecycle policies against a real server with IAM on, through boto3 and the AWS CLI:
Put/Get/DeleteLifecyclePolicy and their errors, previews (AWS's worked examples, pagination,
filters, the waiter), and ``moorage lifecycle run`` beside the server deleting exactly what the
preview named (and nothing in a dry run).

Images get their ages by moving ``pushed_at`` back in the server's SQLite database, as if they
had been pushed days ago (the server reads it on every evaluation)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import admin_init, aws_cli, aws_json, ecr_client
from tests.e2e.client import OCI_INDEX, digest_of, image_index
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import aws_error
from tests.e2e.ecr.layer_api import config_blob, put_image
from tests.e2e.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def account(ecr: Any) -> str:
    return str(ecr.describe_registry()["registryId"])


def rule(priority: int, tag_status: str, count_type: str, number: int, **selection: Any) -> Any:
    chosen: dict[str, Any] = {"tagStatus": tag_status, "countType": count_type}
    if count_type != "imageCountMoreThan":
        chosen["countUnit"] = "days"
    chosen["countNumber"] = number
    chosen.update(selection)
    return {"rulePriority": priority, "selection": chosen, "action": {"type": "expire"}}


def policy(*rules: Any) -> str:
    return json.dumps({"rules": list(rules)})


def image(ecr: Any, repository: str, seed: str, *tags: str) -> str:
    """Push an image carrying ``tags`` (none: untagged); its digest."""
    digest, manifest = put_image(ecr, repository, config_blob(seed), [seed.encode()], None)
    for tag in tags:
        ecr.put_image(repositoryName=repository, imageManifest=manifest.decode(), imageTag=tag)
    return digest


def age(server: IamServer, repository: str, ages: dict[str, float]) -> None:
    """Make the images ``digest -> days`` that many days old."""
    with sqlite3.connect(server.process.data_dir / "moorage.db", timeout=30) as db:
        for digest, days in ages.items():
            (pushed,) = db.execute(
                "SELECT m.pushed_at FROM manifests m JOIN repositories r ON r.id = m.repository_id"
                " WHERE r.name = ? AND m.digest = ?",
                (repository, digest),
            ).fetchone()
            earlier = datetime.fromisoformat(pushed) - timedelta(days=days)
            db.execute(
                "UPDATE manifests SET pushed_at = ? WHERE digest = ? AND repository_id ="
                " (SELECT id FROM repositories WHERE name = ?)",
                (earlier.strftime("%Y-%m-%d %H:%M:%S.%f"), digest, repository),
            )


def preview(ecr: Any, repository: str, **params: Any) -> dict[str, Any]:
    """Start a preview, wait for it with botocore's waiter (every second here), fetch it."""
    started = ecr.start_lifecycle_policy_preview(repositoryName=repository, **params)
    assert started["status"] == "IN_PROGRESS"
    ecr.get_waiter("lifecycle_policy_preview_complete").wait(
        repositoryName=repository, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    answer: dict[str, Any] = ecr.get_lifecycle_policy_preview(repositoryName=repository)
    return answer


def expiring(answer: dict[str, Any]) -> dict[str, tuple[list[str], int]]:
    return {
        r["imageDigest"]: (r["imageTags"], r["appliedRulePriority"])
        for r in answer["previewResults"]
    }


def images_of(ecr: Any, repository: str) -> set[str]:
    found = ecr.list_images(repositoryName=repository)["imageIds"]
    return {i["imageDigest"] for i in found}


# -- Put/Get/DeleteLifecyclePolicy -------------------------------------------------------------

KEEP_ONE = policy(rule(1, "any", "imageCountMoreThan", 1))
DAYS = policy(rule(1, "untagged", "sinceImagePushed", 14))
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # lastEvaluatedAt of a policy that never ran


def test_put_get_delete_a_policy_and_every_error(ecr: Any, account: str) -> None:
    name = "lifecycle/policy"
    ecr.create_repository(repositoryName=name)
    missing = (
        f"Lifecycle policy does not exist for the repository with name '{name}' in the "
        f"registry with id '{account}'"
    )
    assert aws_error(ecr.get_lifecycle_policy, repositoryName=name) == (
        "LifecyclePolicyNotFoundException",
        missing,
    )
    assert aws_error(ecr.delete_lifecycle_policy, repositoryName=name) == (
        "LifecyclePolicyNotFoundException",
        missing,
    )
    put = ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=KEEP_ONE)
    assert {k: v for k, v in put.items() if k != "ResponseMetadata"} == {
        "registryId": account,
        "repositoryName": name,
        "lifecyclePolicyText": KEEP_ONE,
    }
    got = ecr.get_lifecycle_policy(repositoryName=name)
    assert (got["registryId"], got["repositoryName"], got["lifecyclePolicyText"]) == (
        account,
        name,
        KEEP_ONE,
    )
    # Never evaluated yet: AWS always sends lastEvaluatedAt, the Unix epoch until a run.
    assert got["lastEvaluatedAt"] == NEVER
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=DAYS)  # replaces
    deleted = ecr.delete_lifecycle_policy(repositoryName=name)
    assert deleted["lifecyclePolicyText"] == DAYS
    assert deleted["lastEvaluatedAt"] == NEVER
    assert aws_error(ecr.get_lifecycle_policy, repositoryName=name)[0] == (
        "LifecyclePolicyNotFoundException"
    )

    # Validation, in ECR's words.
    zero = policy(rule(1, "any", "imageCountMoreThan", 0))
    assert aws_error(ecr.put_lifecycle_policy, repositoryName=name, lifecyclePolicyText=zero) == (
        "InvalidParameterException",
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle "
        "policy validation failure: numeric instance is lower than the required minimum "
        "(minimum: 1, found: 0)'",
    )
    any_first = policy(
        rule(1, "any", "imageCountMoreThan", 1),
        rule(2, "tagged", "imageCountMoreThan", 1, tagPrefixList=["v"]),
    )
    code, message = aws_error(
        ecr.put_lifecycle_policy, repositoryName=name, lifecyclePolicyText=any_first
    )
    assert code == "InvalidParameterException"
    assert "tagStatus any must have the highest rulePriority" in message
    assert aws_error(
        ecr.start_lifecycle_policy_preview, repositoryName=name, lifecyclePolicyText=zero
    )[0] == ("InvalidParameterException")

    # Without a policy or a preview.
    assert aws_error(ecr.start_lifecycle_policy_preview, repositoryName=name) == (
        "LifecyclePolicyNotFoundException",
        missing,
    )
    code, _ = aws_error(ecr.get_lifecycle_policy_preview, repositoryName=name)
    assert code == "LifecyclePolicyPreviewNotFoundException"

    # Without the repository.
    for call, params in (
        (ecr.put_lifecycle_policy, {"lifecyclePolicyText": KEEP_ONE}),
        (ecr.get_lifecycle_policy, {}),
        (ecr.delete_lifecycle_policy, {}),
        (ecr.start_lifecycle_policy_preview, {"lifecyclePolicyText": KEEP_ONE}),
        (ecr.get_lifecycle_policy_preview, {}),
    ):
        code, message = aws_error(call, repositoryName="lifecycle/absent", **params)
        assert code == "RepositoryNotFoundException"
        assert message == (
            "The repository with name 'lifecycle/absent' does not exist in the registry with "
            f"id '{account}'"
        )


def test_a_second_start_while_a_preview_runs_is_refused(ecr: Any) -> None:
    name = "lifecycle/in-progress"
    ecr.create_repository(repositoryName=name)
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=KEEP_ONE)
    refused = None
    for _ in range(5):  # the job may, rarely, finish between the two calls: try again
        try:
            ecr.start_lifecycle_policy_preview(repositoryName=name)
        except ecr.exceptions.LifecyclePolicyPreviewInProgressException:
            time.sleep(1.5)
            continue
        try:
            ecr.start_lifecycle_policy_preview(repositoryName=name)
        except ecr.exceptions.LifecyclePolicyPreviewInProgressException as error:
            refused = error.response["Error"]
            break
    assert refused is not None
    assert refused["Message"].startswith(
        "Previous lifecycle policy preview request has not been completed"
    )
    ecr.get_waiter("lifecycle_policy_preview_complete").wait(
        repositoryName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


# -- AWS's worked examples ---------------------------------------------------------------------


def test_example_a_through_the_aws_cli(
    ecr: Any, iam_server: IamServer, tmp_path: Path, account: str
) -> None:
    """Rule 1 keeps one prod image, rule 2 one beta image: only A expires (B carries prod)."""
    name = "lifecycle/example-a"
    ecr.create_repository(repositoryName=name)
    a = image(ecr, name, "example a: A", "beta-1", "prod-1")
    b = image(ecr, name, "example a: B", "beta-2", "prod-2")
    c = image(ecr, name, "example a: C", "beta-3")
    age(iam_server, name, {a: 10, b: 9, c: 8})
    text = policy(
        rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["prod"]),
        rule(2, "tagged", "imageCountMoreThan", 1, tagPrefixList=["beta"]),
    )
    document = tmp_path / "policy.json"
    document.write_text(text)
    cli = (iam_server.url, iam_server.admin, tmp_path)
    put = aws_json(
        *cli,
        "ecr",
        "put-lifecycle-policy",
        "--repository-name",
        name,
        "--lifecycle-policy-text",
        f"file://{document}",
    )
    assert put == {"registryId": account, "repositoryName": name, "lifecyclePolicyText": text}
    started = aws_json(*cli, "ecr", "start-lifecycle-policy-preview", "--repository-name", name)
    assert started == {
        "registryId": account,
        "repositoryName": name,
        "lifecyclePolicyText": text,
        "status": "IN_PROGRESS",
    }
    waited = aws_cli(
        *cli, "ecr", "wait", "lifecycle-policy-preview-complete", "--repository-name", name
    )
    assert waited.returncode == 0, waited.stderr
    answer = aws_json(*cli, "ecr", "get-lifecycle-policy-preview", "--repository-name", name)
    [result] = answer["previewResults"]
    assert isinstance(result.pop("imagePushedAt"), (int, float, str))
    assert result == {
        "imageTags": ["beta-1", "prod-1"],
        "imageDigest": a,
        "action": {"type": "EXPIRE"},
        "appliedRulePriority": 1,
        "storageClass": "STANDARD",
    }
    assert answer["status"] == "COMPLETE"
    assert answer["lifecyclePolicyText"] == text
    # The model: transitioningImageTotalCounts is "only present if at least one image will be
    # transitioned".
    assert answer["summary"] == {"expiringImageTotalCount": 1}


def test_example_b_priorities_swapped(ecr: Any, iam_server: IamServer) -> None:
    name = "lifecycle/example-b"
    ecr.create_repository(repositoryName=name)
    a = image(ecr, name, "example b: A", "beta-1", "prod-1")
    b = image(ecr, name, "example b: B", "beta-2", "prod-2")
    c = image(ecr, name, "example b: C", "beta-3")
    age(iam_server, name, {a: 10, b: 9, c: 8})
    text = policy(
        rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["beta"]),
        rule(2, "tagged", "imageCountMoreThan", 1, tagPrefixList=["prod"]),
    )
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)
    answer = preview(ecr, name)
    assert expiring(answer) == {a: (["beta-1", "prod-1"], 1), b: (["beta-2", "prod-2"], 1)}
    assert answer["summary"]["expiringImageTotalCount"] == 2


def test_example_f_three_rules_and_ages(ecr: Any, iam_server: IamServer) -> None:
    """R1 tagged alpha keep 1 marks A, R2 untagged older than 1 day marks B, R3 any keep 1
    sees every image and may only mark D: A, B and D expire."""
    name = "lifecycle/example-f"
    ecr.create_repository(repositoryName=name)
    a = image(ecr, name, "example f: A", "alpha-1", "beta-1")
    b = image(ecr, name, "example f: B")
    c = image(ecr, name, "example f: C", "alpha-2")
    d = image(ecr, name, "example f: D", "git-hash")
    e = image(ecr, name, "example f: E")
    # AWS's days, plus a margin: "older than 1 day" is two whole days here (see lifecycle.py).
    age(iam_server, name, {a: 4, b: 3, c: 2, d: 1, e: 1})
    text = policy(
        rule(1, "tagged", "imageCountMoreThan", 1, tagPatternList=["alpha*"]),
        rule(2, "untagged", "sinceImagePushed", 1),
        rule(3, "any", "imageCountMoreThan", 1),
    )
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)
    answer = preview(ecr, name)
    assert expiring(answer) == {
        a: (["alpha-1", "beta-1"], 1),
        b: ([], 2),
        d: (["git-hash"], 3),
    }


# -- previews: pages, filters, image ids -----------------------------------------------------


def test_preview_pages_filters_and_image_ids(ecr: Any, iam_server: IamServer) -> None:
    name = "lifecycle/pages"
    ecr.create_repository(repositoryName=name)
    tagged = [image(ecr, name, f"pages tagged {n}", f"v{n}") for n in range(4)]
    untagged = [image(ecr, name, f"pages untagged {n}") for n in range(3)]
    kept = image(ecr, name, "pages newest", "newest")
    ages = {digest: 10 - n for n, digest in enumerate(tagged + untagged)}
    age(iam_server, name, ages)
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=KEEP_ONE)
    whole = preview(ecr, name)
    assert set(expiring(whole)) == set(tagged + untagged)
    assert kept not in expiring(whole)
    assert whole["summary"]["expiringImageTotalCount"] == 7
    assert [r["imageDigest"] for r in whole["previewResults"]] == sorted(tagged + untagged)

    pages = ecr.get_paginator("get_lifecycle_policy_preview").paginate(
        repositoryName=name, PaginationConfig={"PageSize": 2}
    )
    seen = [[r["imageDigest"] for r in page["previewResults"]] for page in pages]
    assert [len(page) for page in seen] == [2, 2, 2, 1]
    assert [digest for page in seen for digest in page] == sorted(tagged + untagged)

    only_untagged = ecr.get_lifecycle_policy_preview(
        repositoryName=name, filter={"tagStatus": "UNTAGGED"}
    )
    assert {r["imageDigest"] for r in only_untagged["previewResults"]} == set(untagged)
    assert only_untagged["summary"]["expiringImageTotalCount"] == 7  # the whole preview

    named = ecr.get_lifecycle_policy_preview(
        repositoryName=name,
        imageIds=[{"imageDigest": untagged[0]}, {"imageTag": "v2"}, {"imageTag": "newest"}],
    )
    assert {r["imageDigest"] for r in named["previewResults"]} == {untagged[0], tagged[2]}

    code, _ = aws_error(ecr.get_lifecycle_policy_preview, repositoryName=name, nextToken="bogus")
    assert code == "InvalidParameterException"

    # botocore's model: maxResults and nextToken cannot be used with imageIds.
    token = ecr.get_lifecycle_policy_preview(repositoryName=name, maxResults=2)["nextToken"]
    for extra in ({"maxResults": 2}, {"nextToken": token}):
        assert aws_error(
            ecr.get_lifecycle_policy_preview,
            repositoryName=name,
            imageIds=[{"imageDigest": untagged[0]}],
            **extra,
        ) == (
            "InvalidParameterException",
            "Invalid parameter: nextToken and maxResults cannot be used with imageIds",
        )


# -- runs: moorage lifecycle run ---------------------------------------------------------------


def lifecycle_run(server: IamServer, *args: str) -> str:
    result = run_cli("lifecycle", "run", "--data-dir", str(server.process.data_dir), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_run_deletes_exactly_what_the_preview_named(ecr: Any, iam_server: IamServer) -> None:
    name = "lifecycle/run"
    ecr.create_repository(repositoryName=name)
    old = [image(ecr, name, f"run old {n}", f"release-{n}") for n in range(3)]
    scratch = [image(ecr, name, f"run scratch {n}") for n in range(2)]
    newest = image(ecr, name, "run newest", "release-9")
    # An index over an old untagged manifest: the child is protected while the index lives.
    child_digest, child = put_image(ecr, name, config_blob("run child"), [b"run child"], None)
    index = image_index([child])
    ecr.put_image(
        repositoryName=name,
        imageManifest=index.decode(),
        imageManifestMediaType=OCI_INDEX,
        imageTag="multi",
    )
    age(
        iam_server,
        name,
        {**{d: 30 - n for n, d in enumerate(old)}, **dict.fromkeys(scratch, 20), child_digest: 40},
    )
    text = policy(
        rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["release"]),
        rule(2, "untagged", "sinceImagePushed", 7),
    )
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)
    named = expiring(preview(ecr, name))
    assert set(named) == set(old) | set(scratch)
    before = images_of(ecr, name)
    assert before == {*old, *scratch, newest, child_digest, digest_of(index)}

    dry = lifecycle_run(iam_server, "--repository", name, "--dry-run")
    assert images_of(ecr, name) == before
    for digest in named:
        assert f"would expire {iam_server.admin.account_id}/{name}@{digest}" in dry
    assert f"{name}: would expire 5 images" in dry
    assert ecr.get_lifecycle_policy(repositoryName=name)["lastEvaluatedAt"] == NEVER

    out = lifecycle_run(iam_server, "--repository", name)
    assert images_of(ecr, name) == before - set(named)
    for digest, (tags, priority) in named.items():
        label = ",".join(tags) or "<untagged>"
        assert (
            f"expired {iam_server.admin.account_id}/{name}@{digest} [{label}] by rule {priority}"
            in out
        )
    assert f"{name}: expired 5 images" in out
    assert ecr.get_lifecycle_policy(repositoryName=name)["lastEvaluatedAt"] > NEVER

    # Nothing more to do: the same run again expires nothing.
    again = lifecycle_run(iam_server, "--repository", name)
    assert f"{name}: expired 0 images" in again
    assert images_of(ecr, name) == before - set(named)

    # The audit trail: the three runs, newest first, and what the real one expired.
    result = run_cli(
        "lifecycle",
        "history",
        "--repository",
        name,
        "--images",
        "--data-dir",
        str(iam_server.process.data_dir),
    )
    assert result.returncode == 0, result.stderr
    runs = [line for line in result.stdout.splitlines() if not line.startswith("  ")]
    assert [line.split(" ", 1)[1] for line in runs] == [
        f"{iam_server.admin.account_id}/{name}: expired 0 images",
        f"{iam_server.admin.account_id}/{name}: expired 5 images",
        f"{iam_server.admin.account_id}/{name}: would expire 5 images (dry run)",
    ]
    for digest in named:
        assert f"  expired {iam_server.admin.account_id}/{name}@{digest} [" in result.stdout


def test_run_without_a_policy_says_so(iam_server: IamServer) -> None:
    out = lifecycle_run(iam_server, "--repository", "lifecycle/none-here")
    assert out.strip() == "no repository named lifecycle/none-here has a lifecycle policy"


# -- the scheduled run -------------------------------------------------------------------------


def test_the_scheduled_run_deletes_what_the_preview_named(tmp_path: Path) -> None:
    """A server with the schedule off prepares the repository and the preview; the same data
    served again with ``--lifecycle-interval 1`` expires exactly what the preview named."""
    data_dir = tmp_path / "data"
    admin = admin_init(data_dir)
    name = "lifecycle/scheduled"
    first = ServerProcess(
        data_dir=data_dir, extra_args=["--lifecycle-interval", "0"], emulator=False
    ).start()
    try:
        ecr = ecr_client(first.url, admin)
        ecr.create_repository(repositoryName=name)
        old = [image(ecr, name, f"scheduled old {n}", f"release-{n}") for n in range(3)]
        scratch = [image(ecr, name, f"scheduled scratch {n}") for n in range(2)]
        newest = image(ecr, name, "scheduled newest", "release-9")
        age(
            IamServer(first, admin),
            name,
            {**{d: 30 - n for n, d in enumerate(old)}, **dict.fromkeys(scratch, 20)},
        )
        text = policy(
            rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["release"]),
            rule(2, "untagged", "sinceImagePushed", 7),
        )
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)
        named = set(expiring(preview(ecr, name)))
        assert named == set(old) | set(scratch)
        before = images_of(ecr, name)
        time.sleep(1.5)  # the schedule is off: nothing runs
        assert images_of(ecr, name) == before
        assert ecr.get_lifecycle_policy(repositoryName=name)["lastEvaluatedAt"] == NEVER
    finally:
        assert first.stop() == 0, first.log()

    second = ServerProcess(
        data_dir=data_dir, extra_args=["--lifecycle-interval", "1"], emulator=False
    ).start()
    try:
        ecr = ecr_client(second.url, admin)
        deadline = time.monotonic() + 30
        while ecr.get_lifecycle_policy(repositoryName=name)["lastEvaluatedAt"] == NEVER:
            assert time.monotonic() < deadline, second.log()
            time.sleep(0.2)
        assert images_of(ecr, name) == before - named == {newest}
    finally:
        assert second.stop() == 0, second.log()
