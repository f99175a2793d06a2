"""Regions: on AWS every (account, region) is a registry of its own, and the region a request
is signed for is the one it acts in.

In emulator mode every region is served (three here, as a moto-style suite uses them); a
deployment serves its ``region`` and the ``regions`` its configuration lists, and refuses a
request signed for another as AWS refuses a wrong credential scope.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.aws import Credentials, admin_init
from tests.e2e.client import RegistryClient, digest_of
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
ANY_KEY = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ACCOUNT)
HOST = "{registry_id}.dkr.ecr.{region}.amazonaws.com"


def client(server: ServerProcess, region: str, credentials: Credentials = ANY_KEY) -> Any:
    return boto3.client(
        "ecr",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("regions") / "data"
    process = ServerProcess(
        data_dir=data_dir, extra_args=["--no-workers", "--registry-host", HOST]
    ).start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture
def ecr(emulator: ServerProcess) -> Iterator[dict[str, Any]]:
    """A client per region, on a registry reset before and after, as moto's server mode
    does."""
    reset = urllib.request.Request(f"{emulator.url}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(reset, timeout=10).close()
    yield {region: client(emulator, region) for region in REGIONS}
    urllib.request.urlopen(reset, timeout=10).close()


def test_the_same_name_in_each_region_is_another_repository(ecr: dict[str, Any]) -> None:
    created = {
        region: ecr[region].create_repository(repositoryName="team/app")["repository"]
        for region in REGIONS
    }
    for region, repository in created.items():
        assert repository["repositoryArn"] == (
            f"arn:aws:ecr:{region}:{ACCOUNT}:repository/team/app"
        )
        assert repository["repositoryUri"] == (f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/team/app")
        (listed,) = ecr[region].describe_repositories()["repositories"]
        assert listed["repositoryArn"] == repository["repositoryArn"]
    ecr["eu-central-1"].delete_repository(repositoryName="team/app")
    assert ecr["eu-central-1"].describe_repositories()["repositories"] == []
    assert len(ecr["us-east-1"].describe_repositories()["repositories"]) == 1
    assert len(ecr["ap-south-1"].describe_repositories()["repositories"]) == 1


def test_a_repository_of_one_region_is_absent_from_another(ecr: dict[str, Any]) -> None:
    europe, america = ecr["eu-central-1"], ecr["us-east-1"]
    europe.create_repository(repositoryName="only/here")
    code, message = error_of(america.describe_repositories, repositoryNames=["only/here"])
    assert code == "RepositoryNotFoundException"
    assert message == (
        f"The repository with name 'only/here' does not exist in the registry with id '{ACCOUNT}'"
    )
    assert error_of(america.list_images, repositoryName="only/here")[0] == (
        "RepositoryNotFoundException"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 10,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [],
    }
    europe.put_image(repositoryName="only/here", imageManifest=json.dumps(manifest), imageTag="v1")
    assert [i["imageTag"] for i in europe.list_images(repositoryName="only/here")["imageIds"]] == [
        "v1"
    ]


def test_arns_name_the_request_region(ecr: dict[str, Any]) -> None:
    europe = ecr["eu-central-1"]
    missing = f"arn:aws:ecr:eu-central-1:{ACCOUNT}:repository/absent"
    for call, extra in (
        (europe.list_tags_for_resource, {}),
        (europe.tag_resource, {"tags": [{"Key": "k", "Value": "v"}]}),
        (europe.untag_resource, {"tagKeys": ["k"]}),
    ):
        code, message = error_of(call, resourceArn=missing, **extra)
        assert code == "RepositoryNotFoundException"
        assert "absent" in message
    europe.create_repository(repositoryName="tagged")
    arn = f"arn:aws:ecr:eu-central-1:{ACCOUNT}:repository/tagged"
    europe.tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": "web"}])
    assert europe.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "team", "Value": "web"}
    ]
    # An ARN of another region names a repository this region's registry cannot hold.
    other = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/tagged"
    assert error_of(europe.list_tags_for_resource, resourceArn=other) == (
        "InvalidParameterException",
        "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'",
    )
    kms = europe.create_repository(
        repositoryName="sealed", encryptionConfiguration={"encryptionType": "KMS"}
    )["repository"]["encryptionConfiguration"]["kmsKey"]
    assert kms.startswith(f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/")


def test_registry_settings_are_per_region(ecr: dict[str, Any]) -> None:
    europe, asia = ecr["eu-central-1"], ecr["ap-south-1"]
    europe.put_registry_scanning_configuration(scanType="ENHANCED", rules=[])
    assert europe.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == (
        "ENHANCED"
    )
    assert asia.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == (
        "BASIC"
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "replicate",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": ["ecr:ReplicateImage"],
                "Resource": f"arn:aws:ecr:eu-central-1:{ACCOUNT}:repository/*",
            }
        ],
    }
    europe.put_registry_policy(policyText=json.dumps(policy))
    assert json.loads(europe.get_registry_policy()["policyText"]) == policy
    assert error_of(asia.get_registry_policy)[0] == "RegistryPolicyNotFoundException"


def test_a_region_aws_does_not_have_is_refused(emulator: ServerProcess) -> None:
    """Emulator mode serves the regions of AWS's commercial partition (botocore's list), and
    refuses the rest as AWS refuses a wrong credential scope."""
    for region in ("nowhere", "moon-base-1", "cn-north-1"):
        code, message = error_of(client(emulator, region).describe_repositories)
        assert code == "InvalidSignatureException"
        assert message == f"Credential should be scoped to a valid region, not '{region}'."
    assert client(emulator, "eu-west-3").describe_repositories()["repositories"] == []


def test_a_deployment_serves_the_regions_it_lists(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    admin = admin_init(data_dir)
    server = ServerProcess(
        data_dir=data_dir,
        extra_args=["--also-region", "sa-east-1"],
        emulator=False,
        env={"MOORAGE_REGIONS": "eu-west-1"},  # the command line wins: sa-east-1 only
    ).start()
    try:
        home, europe = client(server, "us-east-1", admin), client(server, "sa-east-1", admin)
        home.create_repository(repositoryName="team/app")
        assert europe.describe_repositories()["repositories"] == []
        created = europe.create_repository(repositoryName="team/app")["repository"]
        assert created["repositoryArn"].startswith("arn:aws:ecr:sa-east-1:")
        for other in ("ap-south-1", "eu-west-1"):
            code, message = error_of(client(server, other, admin).describe_repositories)
            assert code == "InvalidSignatureException"
            assert message == f"Credential should be scoped to a valid region, not '{other}'."
    finally:
        assert server.stop() == 0, server.log()


def test_layers_upload_and_download_in_their_region(ecr: dict[str, Any]) -> None:
    europe = ecr["eu-central-1"]
    europe.create_repository(repositoryName="layers")
    ecr["us-east-1"].create_repository(repositoryName="layers")
    data = b"a layer that lives in Frankfurt"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = europe.initiate_layer_upload(repositoryName="layers")["uploadId"]
    europe.upload_layer_part(
        repositoryName="layers",
        uploadId=upload,
        partFirstByte=0,
        partLastByte=len(data) - 1,
        layerPartBlob=data,
    )
    europe.complete_layer_upload(repositoryName="layers", uploadId=upload, layerDigests=[digest])
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": len(data),
            "digest": digest,
        },
        "layers": [],
    }
    europe.put_image(repositoryName="layers", imageManifest=json.dumps(manifest), imageTag="v1")
    url = europe.get_download_url_for_layer(repositoryName="layers", layerDigest=digest)
    with urllib.request.urlopen(url["downloadUrl"], timeout=10) as response:
        assert response.read() == data
    # The other region's repository of the same name has no such layer.
    code, _ = error_of(
        ecr["us-east-1"].get_download_url_for_layer, repositoryName="layers", layerDigest=digest
    )
    assert code == "LayersNotFoundException"


@pytest.fixture(scope="module")
def by_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An emulator whose registry hosts name the region, as ECR's do."""
    data_dir = tmp_path_factory.mktemp("hosts") / "data"
    process = ServerProcess(
        data_dir=data_dir,
        extra_args=["--no-workers", "--registry-host", "{registry_id}.dkr.ecr.{region}.localhost"],
    ).start()
    yield process
    assert process.stop() == 0, process.log()


def test_v2_acts_in_the_region_its_host_names(by_host: ServerProcess) -> None:
    europe = client(by_host, "eu-central-1")
    uri = europe.create_repository(repositoryName="web")["repository"]["repositoryUri"]
    host = f"{ACCOUNT}.dkr.ecr.eu-central-1.localhost"
    assert uri == f"{host}/web"
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"frankfurt layer"
    with RegistryClient(by_host.url) as registry:
        registry.session.headers["Host"] = host
        digest, _ = registry.push_image("web", "v1", config, [layer])
        assert registry.blob("web", digest_of(layer)) == layer
        assert registry.tags("web") == ["v1"]
    (image,) = europe.describe_images(repositoryName="web")["imageDetails"]
    assert (image["imageDigest"], image["imageTags"]) == (digest, ["v1"])
    # The same path on the host of another region names another registry's repository.
    with RegistryClient(by_host.url) as registry:
        registry.session.headers["Host"] = f"{ACCOUNT}.dkr.ecr.us-east-1.localhost"
        response = registry.manifest("web", "v1")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        registry.session.headers["Host"] = f"{ACCOUNT}.dkr.ecr.moon-base-1.localhost"
        response = registry.manifest("web", "v1")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_scheduled_lifecycle_runs_cover_every_region(tmp_path: Path) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "data", extra_args=["--lifecycle-interval", "1"]
    ).start()
    try:
        asia = client(server, "ap-south-1")
        asia.create_repository(repositoryName="builds")
        for n in range(3):
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 10,
                    "digest": "sha256:" + hashlib.sha256(bytes([n])).hexdigest(),
                },
                "layers": [],
            }
            asia.put_image(
                repositoryName="builds", imageManifest=json.dumps(manifest), imageTag=f"b{n}"
            )
        rule = {
            "rulePriority": 1,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
        asia.put_lifecycle_policy(
            repositoryName="builds", lifecyclePolicyText=json.dumps({"rules": [rule]})
        )
        deadline = time.monotonic() + 30
        while len(asia.describe_images(repositoryName="builds")["imageDetails"]) > 1:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        (kept,) = asia.describe_images(repositoryName="builds")["imageDetails"]
        assert kept["imageTags"] == ["b2"]
    finally:
        assert server.stop() == 0, server.log()
