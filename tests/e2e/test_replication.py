"""Replication on one deployment: to another region of the same account, and to another
account, granted (or not) by the destination's registry policy, as ECR does it.

One IAM-enforcing server serves two regions and holds two accounts; skopeo pushes, boto3
configures and reads the statuses, and digests are compared with ``skopeo inspect --raw``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.aws import Credentials, admin_init, ecr_client
from tests.e2e.oci_layout import Layout, build_layout
from tests.e2e.server import ServerProcess, run_cli
from tests.e2e.test_skopeo import skopeo, skopeo_installed  # noqa: F401
from tests.postgres import create_throwaway_database, drop_database

pytestmark = pytest.mark.e2e

HOME, OTHER_REGION = "us-east-1", "eu-west-1"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
SOURCE, OTHER_ACCOUNT = "123456789012", "210987654321"


class Deployment:
    def __init__(
        self,
        process: ServerProcess,
        source: Credentials,
        other: Credentials,
        database: list[str],
    ) -> None:
        self.process = process
        self.source = source
        self.other = other
        # The --database-url arguments of a CLI command on this deployment (none: SQLite).
        self.database = database

    def ecr(self, credentials: Credentials, region: str = HOME) -> Any:
        return ecr_client(self.process.url, credentials, region=region)

    def creds(self, credentials: Credentials, region: str = HOME) -> str:
        token = self.ecr(credentials, region).get_authorization_token()
        user_password = base64.b64decode(token["authorizationData"][0]["authorizationToken"])
        return user_password.decode()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One deployment on SQLite, and one on PostgreSQL (whose writers run concurrently: the
    tag ordering of concurrent copies is its business there)."""
    data_dir = tmp_path_factory.mktemp(f"replication-{request.param}") / "data"
    database: list[str] = []
    if request.param == "postgres":
        database = ["--database-url", asyncio.run(create_throwaway_database())]
    source = admin_init(data_dir, *database)
    other = admin_init(data_dir, "--account-id", OTHER_ACCOUNT, *database)
    process = ServerProcess(
        data_dir=data_dir,
        emulator=False,
        extra_args=["--also-region", OTHER_REGION, *database],
    ).start()
    yield Deployment(process, source, other, database)
    code = process.stop()
    if database:
        asyncio.run(drop_database(database[1]))
    assert code == 0, process.log()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return build_layout(tmp_path_factory.mktemp("layout") / "image", file_size=8 * 1024)


def wait_for_statuses(
    ecr: Any, repository: str, tag: str, count: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The image's replication statuses once ``count`` of them are no longer IN_PROGRESS."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ecr.describe_image_replication_status(
            repositoryName=repository, imageId={"imageTag": tag}
        )
        statuses = answer["replicationStatuses"]
        done = [s for s in statuses if s["status"] != "IN_PROGRESS"]
        if len(done) >= count:
            return sorted(statuses, key=lambda s: (s["region"], s["registryId"]))
        assert time.monotonic() < deadline, statuses
        time.sleep(0.2)


def raw_manifest(deployment: Deployment, credentials: Credentials, reference: str) -> bytes:
    result = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        deployment.creds(credentials),
        f"docker://{deployment.process.host}/{reference}",
    )
    return result.stdout


def push_as(deployment: Deployment, credentials: Credentials, layout: Layout, to: str) -> None:
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        deployment.creds(credentials),
        f"oci:{layout.path}:{layout.tag}",
        f"docker://{deployment.process.host}/{to}",
    )


def batch_get(ecr: Any, repository: str, tag: str) -> dict[str, Any]:
    (image,) = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])[
        "images"
    ]
    return image


def grant_replication(ecr: Any, source_account: str, *, create: bool) -> None:
    actions = ["ecr:ReplicateImage"] + (["ecr:CreateRepository"] if create else [])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "replicate",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{source_account}:root"},
                "Action": actions,
                "Resource": "*",
            }
        ],
    }
    ecr.put_registry_policy(policyText=json.dumps(policy))


def test_configuration_round_trips_and_keeps_the_quotas(deployment: Deployment) -> None:
    ecr = deployment.ecr(deployment.source)
    assert ecr.describe_registry()["replicationConfiguration"] == {"rules": []}
    config = {
        "rules": [
            {
                "destinations": [{"region": OTHER_REGION, "registryId": SOURCE}],
                "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}],
                "deleteReplication": {"enabled": True},
            },
            {"destinations": [{"region": HOME, "registryId": OTHER_ACCOUNT}]},
        ]
    }
    answer = ecr.put_replication_configuration(replicationConfiguration=config)
    assert answer["replicationConfiguration"] == config
    assert ecr.describe_registry()["replicationConfiguration"] == config
    # The other region's registry has a configuration of its own.
    other_region = deployment.ecr(deployment.source, OTHER_REGION)
    assert other_region.describe_registry()["replicationConfiguration"] == {"rules": []}

    too_many = {"rules": [{"destinations": [{"region": OTHER_REGION, "registryId": SOURCE}]}] * 11}
    with pytest.raises(ecr.exceptions.InvalidParameterException) as caught:
        ecr.put_replication_configuration(replicationConfiguration=too_many)
    assert "at most 10 rules" in caught.value.response["Error"]["Message"]
    to_itself = {"rules": [{"destinations": [{"region": HOME, "registryId": SOURCE}]}]}
    with pytest.raises(ecr.exceptions.InvalidParameterException) as caught:
        ecr.put_replication_configuration(replicationConfiguration=to_itself)
    assert caught.value.response["Error"]["Message"] == (
        "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
        "'Replication destination cannot be the same as the source registry'"
    )
    # Refusals change nothing; an empty list turns replication off.
    assert ecr.describe_registry()["replicationConfiguration"] == config
    ecr.put_replication_configuration(replicationConfiguration={"rules": []})
    assert ecr.describe_registry()["replicationConfiguration"] == {"rules": []}


def test_push_replicates_to_another_region_and_a_granted_account(
    deployment: Deployment, layout: Layout
) -> None:
    source_ecr = deployment.ecr(deployment.source)
    other_ecr = deployment.ecr(deployment.other)
    europe = deployment.ecr(deployment.source, OTHER_REGION)
    source_ecr.create_repository(repositoryName="web/app")
    source_ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [
                        {"region": OTHER_REGION, "registryId": SOURCE},
                        {"region": HOME, "registryId": OTHER_ACCOUNT},
                    ],
                    "repositoryFilters": [{"filter": "web/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    # Without the other account's consent the copy there fails; the other region's succeeds.
    push_as(deployment, deployment.source, layout, "web/app:v1")
    statuses = wait_for_statuses(source_ecr, "web/app", "v1", 2)
    assert statuses == [
        {"region": OTHER_REGION, "registryId": SOURCE, "status": "COMPLETE"},
        {
            "region": HOME,
            "registryId": OTHER_ACCOUNT,
            "status": "FAILED",
            "failureCode": "ACCESS_DENIED",
        },
    ]
    source_raw = raw_manifest(deployment, deployment.source, "web/app:v1")
    replica = batch_get(europe, "web/app", "v1")
    assert replica["imageManifest"].encode() == source_raw
    assert replica["imageId"]["imageDigest"] == "sha256:" + hashlib.sha256(source_raw).hexdigest()
    # Every child of the index came along, layers included.
    index = json.loads(source_raw)
    for child in index["manifests"]:
        (image,) = europe.batch_get_image(
            repositoryName="web/app", imageIds=[{"imageDigest": child["digest"]}]
        )["images"]
        manifest = json.loads(image["imageManifest"])
        layers = [layer["digest"] for layer in manifest["layers"]]
        available = europe.batch_check_layer_availability(
            repositoryName="web/app", layerDigests=layers
        )["layers"]
        assert {layer["layerAvailability"] for layer in available} == {"AVAILABLE"}
    with pytest.raises(other_ecr.exceptions.RepositoryNotFoundException):
        other_ecr.describe_repositories(repositoryNames=["web/app"])

    # The other account grants replication (and repository creation): the next push arrives.
    grant_replication(other_ecr, SOURCE, create=True)
    push_as(deployment, deployment.source, layout, "web/app:v2")
    statuses = wait_for_statuses(source_ecr, "web/app", "v2", 2)
    assert {s["status"] for s in statuses} == {"COMPLETE"}, statuses
    assert raw_manifest(deployment, deployment.other, "web/app:v2") == source_raw
    # Repository settings are not copied: the replica's repository has ECR's defaults.
    (created,) = other_ecr.describe_repositories(repositoryNames=["web/app"])["repositories"]
    assert created["imageTagMutability"] == "MUTABLE"


def test_replicas_do_not_replicate_again(deployment: Deployment, layout: Layout) -> None:
    """A -> B and B -> A (a bidirectional pair), B -> C: a push to A reaches B once, and
    neither goes back to A nor on to C."""
    home = deployment.ecr(deployment.source)
    europe = deployment.ecr(deployment.source, OTHER_REGION)
    other = deployment.ecr(deployment.other)
    grant_replication(other, SOURCE, create=True)
    home.create_repository(repositoryName="loop/app")
    home.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": OTHER_REGION, "registryId": SOURCE}],
                    "repositoryFilters": [{"filter": "loop/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    europe.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [
                        {"region": HOME, "registryId": SOURCE},
                        {"region": HOME, "registryId": OTHER_ACCOUNT},
                    ],
                    "repositoryFilters": [{"filter": "loop/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    push_as(deployment, deployment.source, layout, "loop/app:v1")
    (status,) = wait_for_statuses(home, "loop/app", "v1", 1)
    assert status["status"] == "COMPLETE"
    # The replica in B is there and records no copies of its own.
    answer = europe.describe_image_replication_status(
        repositoryName="loop/app", imageId={"imageTag": "v1"}
    )
    assert answer["replicationStatuses"] == []
    time.sleep(1.5)  # time enough for a chained copy, were one made
    with pytest.raises(other.exceptions.RepositoryNotFoundException):
        other.describe_repositories(repositoryNames=["loop/app"])
    europe.put_replication_configuration(replicationConfiguration={"rules": []})
    home.put_replication_configuration(replicationConfiguration={"rules": []})


def test_status_of_an_unknown_image(deployment: Deployment) -> None:
    ecr = deployment.ecr(deployment.source)
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_image_replication_status(
            repositoryName="absent/repo", imageId={"imageTag": "v1"}
        )
    ecr.create_repository(repositoryName="status/empty")
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_image_replication_status(
            repositoryName="status/empty", imageId={"imageTag": "v1"}
        )


def test_twenty_parallel_pushes_of_one_tag_end_on_its_final_digest(
    deployment: Deployment,
) -> None:
    """20 pushes of one tag at once, each its own image: however the pushes and their copies
    interleave, the replica's tag ends on the digest the source's tag ends on."""
    home = deployment.ecr(deployment.source)
    europe = deployment.ecr(deployment.source, OTHER_REGION)
    home.create_repository(repositoryName="race/app")
    home.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": OTHER_REGION, "registryId": SOURCE}],
                    "repositoryFilters": [{"filter": "race/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    config = b"{}"
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    upload = home.initiate_layer_upload(repositoryName="race/app")["uploadId"]
    home.upload_layer_part(
        repositoryName="race/app",
        uploadId=upload,
        partFirstByte=0,
        partLastByte=1,
        layerPartBlob=config,
    )
    home.complete_layer_upload(
        repositoryName="race/app", uploadId=upload, layerDigests=[config_digest]
    )
    texts = [
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "size": 2,
                    "digest": config_digest,
                },
                "layers": [],
                "annotations": {"n": str(n)},
            }
        )
        for n in range(20)
    ]

    def push(text: str) -> None:
        client = deployment.ecr(deployment.source)
        client.put_image(repositoryName="race/app", imageManifest=text, imageTag="latest")

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(push, texts))
    digests = ["sha256:" + hashlib.sha256(text.encode()).hexdigest() for text in texts]
    deadline = time.monotonic() + 60
    while True:
        pending = [
            d
            for d in digests
            if home.describe_image_replication_status(
                repositoryName="race/app", imageId={"imageDigest": d}
            )["replicationStatuses"][0]["status"]
            == "IN_PROGRESS"
        ]
        if not pending:
            break
        assert time.monotonic() < deadline, pending
        time.sleep(0.3)
    final = batch_get(home, "race/app", "latest")["imageId"]["imageDigest"]
    assert batch_get(europe, "race/app", "latest")["imageId"]["imageDigest"] == final


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def image_tags(ecr: Any, repository: str) -> list[str]:
    images = ecr.describe_images(repositoryName=repository)["imageDetails"]
    return sorted(tag for image in images for tag in image.get("imageTags", []))


@pytest.mark.parametrize("delete_replication", [True, False])
def test_deletes_propagate_only_when_the_rule_says_so(
    deployment: Deployment, layout: Layout, delete_replication: bool
) -> None:
    home = deployment.ecr(deployment.source)
    europe = deployment.ecr(deployment.source, OTHER_REGION)
    name = f"deletes-{str(delete_replication).lower()}/app"
    home.create_repository(repositoryName=name)
    home.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": OTHER_REGION, "registryId": SOURCE}],
                    "repositoryFilters": [{"filter": name, "filterType": "PREFIX_MATCH"}],
                    "deleteReplication": {"enabled": delete_replication},
                }
            ]
        }
    )
    push_as(deployment, deployment.source, layout, f"{name}:v1")
    push_as(deployment, deployment.source, layout, f"{name}:v2")
    for tag in ("v1", "v2"):
        (status,) = wait_for_statuses(home, name, tag, 1)
        assert status["status"] == "COMPLETE"
    wait_until(lambda: image_tags(europe, name) == ["v1", "v2"])
    # A tag removed at the source; the image keeps its other tag.
    home.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])
    if delete_replication:
        wait_until(lambda: image_tags(europe, name) == ["v2"])
        # The index by digest (its children stay, untagged, at both ends).
        digest = batch_get(home, name, "v2")["imageId"]["imageDigest"]
        home.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": digest}])

        def index_gone() -> bool:
            images = europe.describe_images(repositoryName=name)["imageDetails"]
            return digest not in {image["imageDigest"] for image in images}

        wait_until(index_gone)
        assert image_tags(europe, name) == []
    else:
        time.sleep(1.5)  # time enough for a deletion, were one replicated
        assert image_tags(europe, name) == ["v1", "v2"]
    home.put_replication_configuration(replicationConfiguration={"rules": []})


def test_a_replication_template_shapes_the_new_repository_and_immutable_tags_hold(
    deployment: Deployment, layouts_pair: tuple[Layout, Layout]
) -> None:
    """The destination's REPLICATION template gives the repository it creates its settings;
    a later copy whose tag is immutable there arrives untagged, as in ECR."""
    home = deployment.ecr(deployment.source)
    other = deployment.ecr(deployment.other)
    grant_replication(other, SOURCE, create=True)
    other.create_repository_creation_template(
        prefix="tmpl",
        appliedFor=["REPLICATION"],
        imageTagMutability="IMMUTABLE",
        resourceTags=[{"Key": "origin", "Value": "replication"}],
    )
    home.create_repository(repositoryName="tmpl/app")
    home.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": HOME, "registryId": OTHER_ACCOUNT}],
                    "repositoryFilters": [{"filter": "tmpl/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    first, second = layouts_pair
    push_as(deployment, deployment.source, first, "tmpl/app:v1")
    (status,) = wait_for_statuses(home, "tmpl/app", "v1", 1)
    assert status["status"] == "COMPLETE", status
    (created,) = other.describe_repositories(repositoryNames=["tmpl/app"])["repositories"]
    assert created["imageTagMutability"] == "IMMUTABLE"
    assert other.list_tags_for_resource(resourceArn=created["repositoryArn"])["tags"] == [
        {"Key": "origin", "Value": "replication"}
    ]
    v1 = batch_get(other, "tmpl/app", "v1")["imageId"]["imageDigest"]
    # The same tag, another image: it arrives, untagged; v1 still names the first.
    push_as(deployment, deployment.source, second, "tmpl/app:v1")
    second_digest = batch_get(home, "tmpl/app", "v1")["imageId"]["imageDigest"]
    assert second_digest != v1
    statuses = home.describe_image_replication_status(
        repositoryName="tmpl/app", imageId={"imageDigest": second_digest}
    )
    deadline = time.monotonic() + 30
    while statuses["replicationStatuses"][0]["status"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.2)
        statuses = home.describe_image_replication_status(
            repositoryName="tmpl/app", imageId={"imageDigest": second_digest}
        )
    assert statuses["replicationStatuses"][0]["status"] == "COMPLETE"
    assert batch_get(other, "tmpl/app", "v1")["imageId"]["imageDigest"] == v1
    (arrived,) = other.batch_get_image(
        repositoryName="tmpl/app", imageIds=[{"imageDigest": second_digest}]
    )["images"]
    assert arrived["imageId"]["imageDigest"] == second_digest
    home.put_replication_configuration(replicationConfiguration={"rules": []})
    other.delete_repository_creation_template(prefix="tmpl")


@pytest.fixture(scope="module")
def layouts_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Layout, Layout]:
    root = tmp_path_factory.mktemp("pair")
    return (
        build_layout(root / "a", file_size=4 * 1024, seed=11),
        build_layout(root / "b", file_size=4 * 1024, seed=12),
    )


def test_a_lifecycle_expiry_is_replicated_as_a_delete(
    deployment: Deployment, layouts_pair: tuple[Layout, Layout]
) -> None:
    # ECR's replication-delete page: with deleteReplication, images that a lifecycle policy
    # expires at the source are deleted at the destinations too.
    home = deployment.ecr(deployment.source)
    europe = deployment.ecr(deployment.source, OTHER_REGION)
    name = "expiring/app"
    home.create_repository(repositoryName=name)
    home.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": OTHER_REGION, "registryId": SOURCE}],
                    "repositoryFilters": [{"filter": name, "filterType": "PREFIX_MATCH"}],
                    "deleteReplication": {"enabled": True},
                }
            ]
        }
    )
    old, new = layouts_pair
    push_as(deployment, deployment.source, old, f"{name}:old-1")
    push_as(deployment, deployment.source, new, f"{name}:old-2")  # the newer one stays
    for tag in ("old-1", "old-2"):
        (status,) = wait_for_statuses(home, name, tag, 1)
        assert status["status"] == "COMPLETE"
    expiring = batch_get(home, name, "old-1")["imageId"]["imageDigest"]
    kept = batch_get(home, name, "old-2")["imageId"]["imageDigest"]
    home.put_lifecycle_policy(
        repositoryName=name,
        lifecyclePolicyText=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "tagged",
                            "tagPrefixList": ["old-"],
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
    )
    result = run_cli(
        "lifecycle",
        "run",
        "--repository",
        name,
        "--data-dir",
        str(deployment.process.data_dir),
        *deployment.database,
    )
    assert result.returncode == 0, result.stderr

    def digests(ecr: Any) -> set[str]:
        images = ecr.describe_images(repositoryName=name)["imageDetails"]
        return {image["imageDigest"] for image in images}

    assert expiring not in digests(home)
    wait_until(lambda: expiring not in digests(europe))
    assert kept in digests(europe)
    assert image_tags(europe, name) == ["old-2"]
    home.put_replication_configuration(replicationConfiguration={"rules": []})


def test_the_cli_lists_where_an_image_was_replicated(deployment: Deployment) -> None:
    result = run_cli(
        "repo",
        "images",
        "web/app",
        "--data-dir",
        str(deployment.process.data_dir),
        *deployment.database,
    )
    assert result.returncode == 0, result.stderr
    (v2,) = [line for line in result.stdout.splitlines() if "v2" in line.split("  ")[1]]
    assert f"replicated to {SOURCE}/{OTHER_REGION}:COMPLETE {OTHER_ACCOUNT}/{HOME}:COMPLETE" in v2
    assert "pushed" in v2
    jobs = run_cli(
        "jobs", "list", "--data-dir", str(deployment.process.data_dir), *deployment.database
    )
    assert jobs.returncode == 0, jobs.stderr
    assert "replicate" in jobs.stdout


def test_a_backfill_copies_what_was_pushed_before_the_rule(
    deployment: Deployment, layouts_pair: tuple[Layout, Layout]
) -> None:
    home = deployment.ecr(deployment.source)
    europe = deployment.ecr(deployment.source, OTHER_REGION)
    home.put_replication_configuration(replicationConfiguration={"rules": []})
    home.create_repository(repositoryName="backfill/app")
    first, second = layouts_pair
    push_as(deployment, deployment.source, first, "backfill/app:old")
    push_as(deployment, deployment.source, second, "backfill/app:older")
    destination = {"region": OTHER_REGION, "registryId": SOURCE}
    with pytest.raises(home.exceptions.InvalidParameterException):
        home.start_replication_backfill(destination=destination)
    home.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [destination],
                    "repositoryFilters": [{"filter": "backfill/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    started = home.start_replication_backfill(destination=destination)
    assert started["status"] == "PREPARING"
    backfill_id = started["replicationBackfillId"]
    deadline = time.monotonic() + 60
    while True:
        results = home.describe_replication_backfill_results(replicationBackfillId=backfill_id)
        if results["status"] == "COMPLETE":
            break
        assert time.monotonic() < deadline, results
        time.sleep(0.3)
    assert results["progress"]["totalReplicationCount"] == 2
    assert results["progress"]["completedReplicationCount"] == 2
    assert sorted(r["imageId"]["imageTag"] for r in results["results"]) == ["old", "older"]
    for tag in ("old", "older"):
        assert (
            batch_get(europe, "backfill/app", tag)["imageId"]["imageDigest"]
            == batch_get(home, "backfill/app", tag)["imageId"]["imageDigest"]
        )
    (status,) = home.describe_image_replication_status(
        repositoryName="backfill/app", imageId={"imageTag": "old"}
    )["replicationStatuses"]
    assert status["status"] == "COMPLETE"
    listed = home.list_replication_backfills()["backfills"]
    assert listed[0]["replicationBackfillId"] == backfill_id
    with pytest.raises(home.exceptions.ReplicationBackfillInvalidStatusException):
        home.stop_replication_backfill(replicationBackfillId=backfill_id)
    with pytest.raises(home.exceptions.ReplicationBackfillNotFoundException):
        home.describe_replication_backfill_results(
            replicationBackfillId="00000000-0000-4000-8000-000000000000"
        )
    home.put_replication_configuration(replicationConfiguration={"rules": []})


def test_referrers_follow_their_subject(
    deployment: Deployment, layouts_pair: tuple[Layout, Layout]
) -> None:
    """An image and its signature, both pushed before the rule; a retag then replicates the
    image, and its referrer comes along."""
    home = deployment.ecr(deployment.source)
    europe = deployment.ecr(deployment.source, OTHER_REGION)
    home.put_replication_configuration(replicationConfiguration={"rules": []})
    home.create_repository(repositoryName="signed/app")
    first, _ = layouts_pair
    push_as(deployment, deployment.source, first, "signed/app:v1")
    subject = batch_get(home, "signed/app", "v1")
    subject_digest = subject["imageId"]["imageDigest"]
    empty = b"{}"
    empty_digest = "sha256:" + hashlib.sha256(empty).hexdigest()
    upload = home.initiate_layer_upload(repositoryName="signed/app")["uploadId"]
    home.upload_layer_part(
        repositoryName="signed/app",
        uploadId=upload,
        partFirstByte=0,
        partLastByte=1,
        layerPartBlob=empty,
    )
    home.complete_layer_upload(
        repositoryName="signed/app", uploadId=upload, layerDigests=[empty_digest]
    )
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "size": 2,
                "digest": empty_digest,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "size": 2,
                    "digest": empty_digest,
                }
            ],
            "subject": {
                "mediaType": subject["imageManifestMediaType"],
                "size": len(subject["imageManifest"].encode()),
                "digest": subject_digest,
            },
        }
    )
    home.put_image(repositoryName="signed/app", imageManifest=signature)
    signature_digest = "sha256:" + hashlib.sha256(signature.encode()).hexdigest()
    home.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": OTHER_REGION, "registryId": SOURCE}],
                    "repositoryFilters": [{"filter": "signed/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    home.put_image(
        repositoryName="signed/app", imageManifest=subject["imageManifest"], imageTag="v2"
    )
    (status,) = wait_for_statuses(home, "signed/app", "v2", 1)
    assert status["status"] == "COMPLETE"
    referrers = europe.list_image_referrers(
        repositoryName="signed/app", subjectId={"imageDigest": subject_digest}
    )["referrers"]
    assert [r["digest"] for r in referrers] == [signature_digest]
    home.put_replication_configuration(replicationConfiguration={"rules": []})
