"""Replication to another moorage deployment: A (us-east-1) names B (eu-west-1) as its peer,
B trusts A's replication key, and B's registry policy decides what A's account may write
there, exactly as ECR's destination policy does. No key of B is ever given to A."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import Credentials, admin_init, aws_cli, aws_cli_v2, ecr_client
from tests.e2e.distribution import Distribution
from tests.e2e.oci_layout import Layout, build_layout
from tests.e2e.server import ServerProcess, run_cli
from tests.e2e.test_skopeo import skopeo, skopeo_installed  # noqa: F401

pytestmark = pytest.mark.e2e

HOME, EUROPE = "us-east-1", "eu-west-1"
SOURCE, OTHER = "123456789012", "210987654321"
# Another OCI registry as a destination "region" (beyond ECR), with a login.
FOREIGN = "oci-dist"
FOREIGN_LOGIN = ("replicator", "dist-secret")


class Pair:
    def __init__(
        self,
        a: ServerProcess,
        b: ServerProcess,
        a_admin: Credentials,
        b_admin: Credentials,
        b_other: Credentials,
    ) -> None:
        self.a, self.b = a, b
        self.a_ecr = ecr_client(a.url, a_admin)
        self.b_ecr = ecr_client(b.url, b_admin, region=EUROPE)
        self.b_other = ecr_client(b.url, b_other, region=EUROPE)
        self.a_admin, self.b_admin, self.b_other_admin = a_admin, b_admin, b_other
        self.foreign: Distribution | None = None

    @staticmethod
    def creds(ecr: Any) -> str:
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        return base64.b64decode(token).decode()


def public_key(data_dir: Path) -> str:
    result = run_cli("replication", "public-key", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("peers")
    a_dir, b_dir = root / "a" / "data", root / "b" / "data"
    a_admin = admin_init(a_dir)
    b_admin = admin_init(b_dir)
    b_other = admin_init(b_dir, "--account-id", OTHER)
    b = ServerProcess(
        data_dir=b_dir,
        emulator=False,
        extra_args=["--region", EUROPE, "--replication-trusted-key", public_key(a_dir)],
    ).start()
    foreign = Distribution(root / "foreign", login=FOREIGN_LOGIN).start()
    user, password = FOREIGN_LOGIN
    a = ServerProcess(
        data_dir=a_dir,
        emulator=False,
        extra_args=[
            "--replication-peer",
            f"{EUROPE}={b.url}",
            "--replication-peer",
            f"{FOREIGN}=oci+http://{user}:{password}@{foreign.host}",
        ],
    ).start()
    try:
        made = Pair(a, b, a_admin, b_admin, b_other)
        made.foreign = foreign
        yield made
    finally:
        foreign.stop()
        codes = (a.stop(), b.stop())
        assert codes == (0, 0), a.log() + b.log()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    # Layers of ~10 MiB of random bytes: more than one 8 MiB chunk each.
    return build_layout(
        tmp_path_factory.mktemp("big") / "image",
        architectures=("amd64",),
        layers_per_image=1,
        file_size=5 * 1024 * 1024,
    )


def push(pair: Pair, layout: Layout, reference: str) -> None:
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        pair.creds(pair.a_ecr),
        f"oci:{layout.path}:{layout.tag}",
        f"docker://{pair.a.host}/{reference}",
    )


def statuses(ecr: Any, name: str, tag: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        found = ecr.describe_image_replication_status(
            repositoryName=name, imageId={"imageTag": tag}
        )["replicationStatuses"]
        if len([s for s in found if s["status"] != "IN_PROGRESS"]) >= count:
            return sorted(found, key=lambda s: s["registryId"])
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


def raw(server: ServerProcess, ecr: Any, reference: str) -> bytes:
    return skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        Pair.creds(ecr),
        f"docker://{server.host}/{reference}",
    ).stdout


def test_a_push_to_a_reaches_b_in_both_accounts_as_b_allows(
    pair: Pair, layout: Layout, tmp_path: Path
) -> None:
    pair.a_ecr.create_repository(repositoryName="peer/app")
    # The AWS CLI, as a user would configure it.
    config = {
        "rules": [
            {
                "destinations": [
                    {"region": EUROPE, "registryId": SOURCE},
                    {"region": EUROPE, "registryId": OTHER},
                ]
            }
        ]
    }
    result = aws_cli(
        pair.a.url,
        pair.a_admin,
        tmp_path,
        "ecr",
        "put-replication-configuration",
        "--replication-configuration",
        json.dumps(config),
        cli=aws_cli_v2(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["replicationConfiguration"] == config
    push(pair, layout, "peer/app:v1")
    found = statuses(pair.a_ecr, "peer/app", "v1", 2)
    assert found == [
        {"region": EUROPE, "registryId": SOURCE, "status": "COMPLETE"},
        {"region": EUROPE, "registryId": OTHER, "status": "FAILED", "failureCode": "ACCESS_DENIED"},
    ]
    source_raw = raw(pair.a, pair.a_ecr, "peer/app:v1")
    assert raw(pair.b, pair.b_ecr, "peer/app:v1") == source_raw
    digest = "sha256:" + hashlib.sha256(source_raw).hexdigest()
    (image,) = pair.b_ecr.describe_images(repositoryName="peer/app", imageIds=[{"imageTag": "v1"}])[
        "imageDetails"
    ]
    assert image["imageDigest"] == digest
    # The other account grants A's account replication and repository creation.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "fromA",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{SOURCE}:root"},
                "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
                "Resource": "*",
            }
        ],
    }
    pair.b_other.put_registry_policy(policyText=json.dumps(policy))
    push(pair, layout, "peer/app:v2")
    assert {s["status"] for s in statuses(pair.a_ecr, "peer/app", "v2", 2)} == {"COMPLETE"}
    described = aws_cli(
        pair.a.url,
        pair.a_admin,
        tmp_path,
        "ecr",
        "describe-image-replication-status",
        "--repository-name",
        "peer/app",
        "--image-id",
        "imageTag=v2",
        cli=aws_cli_v2(),
    )
    assert described.returncode == 0, described.stderr
    assert {s["status"] for s in json.loads(described.stdout)["replicationStatuses"]} == {
        "COMPLETE"
    }
    assert raw(pair.b, pair.b_other, "peer/app:v2") == source_raw
    # What A may do in B's other account is replication only: no pulls, no listing.
    (created,) = pair.b_other.describe_repositories(repositoryNames=["peer/app"])["repositories"]
    assert created["repositoryArn"].startswith(f"arn:aws:ecr:{EUROPE}:{OTHER}:")


def test_a_deployment_b_does_not_trust_is_refused(
    pair: Pair, layout: Layout, tmp_path: Path
) -> None:
    stranger_dir = tmp_path / "stranger" / "data"
    admin = admin_init(stranger_dir)
    stranger = ServerProcess(
        data_dir=stranger_dir,
        emulator=False,
        extra_args=["--replication-peer", f"{EUROPE}={pair.b.url}"],
    ).start()
    try:
        ecr = ecr_client(stranger.url, admin)
        ecr.create_repository(repositoryName="intruder/app")
        ecr.put_replication_configuration(
            replicationConfiguration={
                "rules": [{"destinations": [{"region": EUROPE, "registryId": SOURCE}]}]
            }
        )
        skopeo(
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--dest-creds",
            Pair.creds(ecr),
            f"oci:{layout.path}:{layout.tag}",
            f"docker://{stranger.host}/intruder/app:v1",
        )
        (status,) = statuses(ecr, "intruder/app", "v1", 1)
        assert status["status"] == "FAILED"
        assert status["failureCode"] == "ACCESS_DENIED"
        with pytest.raises(pair.b_ecr.exceptions.RepositoryNotFoundException):
            pair.b_ecr.describe_repositories(repositoryNames=["intruder/app"])
    finally:
        assert stranger.stop() == 0, stranger.log()


def test_deletes_reach_the_peer_when_the_rule_says_so(pair: Pair, layout: Layout) -> None:
    pair.a_ecr.create_repository(repositoryName="peer/deletes")
    pair.a_ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": EUROPE, "registryId": SOURCE}],
                    "repositoryFilters": [{"filter": "peer/deletes", "filterType": "PREFIX_MATCH"}],
                    "deleteReplication": {"enabled": True},
                }
            ]
        }
    )
    push(pair, layout, "peer/deletes:v1")
    (status,) = statuses(pair.a_ecr, "peer/deletes", "v1", 1)
    assert status["status"] == "COMPLETE"
    pair.a_ecr.batch_delete_image(repositoryName="peer/deletes", imageIds=[{"imageTag": "v1"}])
    deadline = time.monotonic() + 30
    while pair.b_ecr.list_images(repositoryName="peer/deletes", filter={"tagStatus": "TAGGED"})[
        "imageIds"
    ]:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_another_oci_registry_as_a_destination(pair: Pair, layout: Layout) -> None:
    """Beyond ECR: a CNCF distribution (with a login) named as a destination region."""
    assert pair.foreign is not None
    pair.a_ecr.create_repository(repositoryName="export/app")
    pair.a_ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": FOREIGN, "registryId": SOURCE}],
                    "repositoryFilters": [{"filter": "export/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    push(pair, layout, "export/app:v1")
    (status,) = statuses(pair.a_ecr, "export/app", "v1", 1)
    assert status == {"region": FOREIGN, "registryId": SOURCE, "status": "COMPLETE"}
    user, password = FOREIGN_LOGIN
    copied = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        f"{user}:{password}",
        f"docker://{pair.foreign.host}/export/app:v1",
    ).stdout
    assert copied == raw(pair.a, pair.a_ecr, "export/app:v1")
    assert password not in pair.a.log()
