"""Every implemented ECR operation through the AWS CLI (awscli from PyPI), as users type them.

boto3 covers each operation's cases in the other modules; here the point is the CLI itself:
its argument shorthand (``Key=team,Value=web``, ``imageTag=v1``), ``file://`` and ``fileb://``
inputs, and its JSON output, against a real server with IAM on.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import aws_cli, aws_json
from tests.e2e.conftest import IamServer

pytestmark = pytest.mark.e2e

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
APP = ("--repository-name", "cli/app")
IMG = ("--repository-name", "cli/img")


@pytest.fixture
def aws(iam_server: IamServer, tmp_path: Path) -> Any:
    def run(*args: str) -> dict[str, Any]:
        return aws_json(iam_server.url, iam_server.admin, tmp_path, "ecr", *args)

    return run


def test_repository_policy_tag_and_registry_commands(
    aws: Any, iam_server: IamServer, tmp_path: Path
) -> None:
    created = aws(
        "create-repository",
        "--repository-name",
        "cli/app",
        "--image-tag-mutability",
        "IMMUTABLE",
        "--image-scanning-configuration",
        "scanOnPush=true",
        "--tags",
        "Key=team,Value=web",
    )["repository"]
    arn = created["repositoryArn"]
    assert created["imageTagMutability"] == "IMMUTABLE"
    assert created["imageScanningConfiguration"] == {"scanOnPush": True}
    (described,) = aws("describe-repositories", "--repository-names", "cli/app")["repositories"]
    assert described["repositoryArn"] == arn

    assert (
        aws(
            "put-image-tag-mutability",
            "--repository-name",
            "cli/app",
            "--image-tag-mutability",
            "MUTABLE",
        )["imageTagMutability"]
        == "MUTABLE"
    )
    scanning = aws(
        "put-image-scanning-configuration",
        "--repository-name",
        "cli/app",
        "--image-scanning-configuration",
        "scanOnPush=false",
    )
    assert scanning["imageScanningConfiguration"] == {"scanOnPush": False}

    aws("tag-resource", "--resource-arn", arn, "--tags", "Key=cost,Value=42")
    tags = aws("list-tags-for-resource", "--resource-arn", arn)["tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("cost", "42"), ("team", "web")]
    aws("untag-resource", "--resource-arn", arn, "--tag-keys", "cost")
    assert aws("list-tags-for-resource", "--resource-arn", arn)["tags"] == [
        {"Key": "team", "Value": "web"}
    ]

    account = iam_server.admin.account_id
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Pull",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                }
            ],
        }
    )
    aws("set-repository-policy", "--repository-name", "cli/app", "--policy-text", policy)
    got = aws("get-repository-policy", "--repository-name", "cli/app")
    assert json.loads(got["policyText"]) == json.loads(policy)
    assert aws("delete-repository-policy", "--repository-name", "cli/app")["policyText"]
    missing = aws_cli(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "get-repository-policy",
        "--repository-name",
        "cli/app",
    )
    assert missing.returncode != 0
    assert "RepositoryPolicyNotFoundException" in missing.stderr

    registry_policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                    "Action": "ecr:ReplicateImage",
                    "Resource": f"arn:aws:ecr:us-east-1:{account}:repository/*",
                }
            ],
        }
    )
    assert aws("put-registry-policy", "--policy-text", registry_policy)["registryId"] == account
    assert json.loads(aws("get-registry-policy")["policyText"]) == json.loads(registry_policy)
    aws("delete-registry-policy")
    assert aws("describe-registry")["registryId"] == account

    setting = aws("get-account-setting", "--name", "BASIC_SCAN_TYPE_VERSION")
    assert setting == {"name": "BASIC_SCAN_TYPE_VERSION", "value": "AWS_NATIVE"}
    put = aws("put-account-setting", "--name", "BLOB_MOUNTING", "--value", "ENABLED")
    assert put == {"name": "BLOB_MOUNTING", "value": "ENABLED"}

    (token,) = aws("get-authorization-token")["authorizationData"]
    assert token["proxyEndpoint"] == iam_server.url

    deleted = aws("delete-repository", "--repository-name", "cli/app", "--force")
    assert deleted["repository"]["repositoryArn"] == arn


def test_layer_and_image_commands(aws: Any, tmp_path: Path) -> None:
    aws("create-repository", "--repository-name", "cli/img")
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer = b"a layer uploaded with the AWS CLI\n" * 100
    digests = []
    for blob in (config, layer):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        digests.append(digest)
        upload_id = aws("initiate-layer-upload", "--repository-name", "cli/img")["uploadId"]
        part = tmp_path / f"{digest[7:]}.part"
        part.write_bytes(blob)
        uploaded = aws(
            "upload-layer-part",
            "--repository-name",
            "cli/img",
            "--upload-id",
            upload_id,
            "--part-first-byte",
            "0",
            "--part-last-byte",
            str(len(blob) - 1),
            "--layer-part-blob",
            f"fileb://{part}",
        )
        assert uploaded["lastByteReceived"] == len(blob) - 1
        completed = aws(
            "complete-layer-upload",
            "--repository-name",
            "cli/img",
            "--upload-id",
            upload_id,
            "--layer-digests",
            digest,
        )
        assert completed["layerDigest"] == digest
    available = aws(
        "batch-check-layer-availability",
        "--repository-name",
        "cli/img",
        "--layer-digests",
        *digests,
    )
    assert [layer["layerAvailability"] for layer in available["layers"]] == ["AVAILABLE"] * 2

    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digests[0],
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digests[1],
                    "size": len(layer),
                }
            ],
        }
    )
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(manifest)
    image = aws(
        "put-image",
        "--repository-name",
        "cli/img",
        "--image-manifest",
        f"file://{manifest_file}",
        "--image-tag",
        "v1",
    )["image"]
    image_digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    assert image["imageId"] == {"imageDigest": image_digest, "imageTag": "v1"}

    (got,) = aws("batch-get-image", "--repository-name", "cli/img", "--image-ids", "imageTag=v1")[
        "images"
    ]
    assert got["imageManifest"] == manifest
    assert aws("list-images", "--repository-name", "cli/img")["imageIds"] == [
        {"imageDigest": image_digest, "imageTag": "v1"}
    ]
    (detail,) = aws(
        "describe-images", "--repository-name", "cli/img", "--image-ids", "imageTag=v1"
    )["imageDetails"]
    assert detail["imageSizeInBytes"] == len(config) + len(layer)
    referrers = aws(
        "list-image-referrers",
        "--repository-name",
        "cli/img",
        "--subject-id",
        f"imageDigest={image_digest}",
    )
    assert referrers["referrers"] == []

    url = aws(
        "get-download-url-for-layer", "--repository-name", "cli/img", "--layer-digest", digests[1]
    )["downloadUrl"]
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == layer

    deleted = aws(
        "batch-delete-image", "--repository-name", "cli/img", "--image-ids", "imageTag=v1"
    )
    assert deleted["imageIds"] == [{"imageDigest": image_digest, "imageTag": "v1"}]
    assert deleted["failures"] == []
