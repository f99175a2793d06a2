"""ECR Public's API (``ecr-public``) against a real server with IAM on, driven by boto3's
``ecr-public`` client and the AWS CLI: public repositories and their catalog data, the
registry and its alias, images pushed through the layer API, policies, resource tags, the
authorization token, authorization by ``ecr-public:*`` actions on ECR Public's ARNs, and the
model's operations moorage does not offer (``UnsupportedCommandException``)."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from moorage.protocols.aws.ecr_public.operations import NOT_OFFERED
from moorage.protocols.aws.shapes import service_model
from tests.e2e.aws import Credentials, aws_json, ecr_client
from tests.e2e.client import digest_of
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import allow, aws_error, create_user, resource_policy
from tests.e2e.ecr.layer_api import config_blob, put_image, upload_blob

pytestmark = pytest.mark.e2e


def public_client(url: str, credentials: Credentials) -> Any:
    return boto3.client(
        "ecr-public",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def png(width: int, height: int) -> bytes:
    """A valid grey PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def public(iam_server: IamServer) -> Any:
    return public_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def alias(public: Any) -> str:
    (registry,) = public.describe_registries()["registries"]
    (entry,) = registry["aliases"]
    return str(entry["name"])


def test_every_operation_of_the_model_is_built_or_not_offered() -> None:
    from moorage.protocols.aws.ecr_public import operations
    from moorage.protocols.aws.operations import OperationTable

    table: OperationTable[Any] = OperationTable.from_modules(operations, service="ecr-public")
    model = set(service_model("ecr-public").operation_names)
    built = {name for name in model if table.get(name) is not None}
    assert built | NOT_OFFERED == model
    assert not built & NOT_OFFERED
    # The 23 operations ECR Public has always had, all built.
    assert len(built) == 23


def test_the_registry_and_its_default_alias(public: Any, alias: str, iam_server: IamServer) -> None:
    account = iam_server.admin.account_id
    (registry,) = public.describe_registries()["registries"]
    assert registry["registryId"] == account
    assert registry["registryArn"] == f"arn:aws:ecr-public::{account}:registry/{account}"
    assert registry["registryUri"] == f"{iam_server.process.host}/{alias}"
    assert registry["verified"] is False
    assert registry["aliases"] == [
        {
            "name": alias,
            "status": "ACTIVE",
            "primaryRegistryAlias": True,
            "defaultRegistryAlias": True,
        }
    ]
    assert len(alias) == 8
    assert alias[0].isalpha()
    assert alias.isalnum()
    # The same alias every time.
    assert public.describe_registries()["registries"][0]["aliases"][0]["name"] == alias


def test_registry_catalog_data(public: Any, iam_server: IamServer) -> None:
    put = public.put_registry_catalog_data(displayName="Team Moorage", description="Our images")
    assert put["registryCatalogData"] == {
        "displayName": "Team Moorage",
        "description": "Our images",
    }
    logo = png(64, 64)
    public.put_registry_catalog_data(logoImageBlob=logo)
    got = public.get_registry_catalog_data()["registryCatalogData"]
    # A member not given keeps its value.
    assert got["displayName"] == "Team Moorage"
    assert got["logoUrl"].startswith(f"http://{iam_server.process.host}/gallery/_logos/")
    code, message = aws_error(public.put_registry_catalog_data, logoImageBlob=b"GIF89a...")
    assert code == "InvalidParameterException"
    assert "PNG" in message


def test_create_describe_and_delete_a_repository(
    public: Any, alias: str, iam_server: IamServer
) -> None:
    account = iam_server.admin.account_id
    created = public.create_repository(
        repositoryName="web/app",
        catalogData={
            "description": "A web app",
            "architectures": ["x86-64", "ARM 64"],
            "operatingSystems": ["Linux"],
            "aboutText": "# About\nIt serves.",
            "usageText": "docker pull it",
        },
        tags=[{"Key": "team", "Value": "web"}],
    )
    repository = created["repository"]
    assert repository["repositoryArn"] == f"arn:aws:ecr-public::{account}:repository/web/app"
    assert repository["repositoryUri"] == f"{iam_server.process.host}/{alias}/web/app"
    assert repository["registryId"] == account
    assert created["catalogData"] == {
        "description": "A web app",
        "architectures": ["x86-64", "ARM 64"],
        "operatingSystems": ["Linux"],
        "aboutText": "# About\nIt serves.",
        "usageText": "docker pull it",
        "marketplaceCertified": False,
    }
    described = public.describe_repositories(repositoryNames=["web/app"])["repositories"]
    assert described == [repository]
    assert aws_error(public.create_repository, repositoryName="web/app")[0] == (
        "RepositoryAlreadyExistsException"
    )
    # PutRepositoryCatalogData replaces the members it is given and keeps the others.
    updated = public.put_repository_catalog_data(
        repositoryName="web/app", catalogData={"description": "Still a web app"}
    )["catalogData"]
    assert updated["description"] == "Still a web app"
    assert updated["architectures"] == ["x86-64", "ARM 64"]
    assert public.get_repository_catalog_data(repositoryName="web/app")["catalogData"] == updated
    deleted = public.delete_repository(repositoryName="web/app")["repository"]
    assert deleted["repositoryArn"] == repository["repositoryArn"]
    for call, params in (
        (public.describe_repositories, {"repositoryNames": ["web/app"]}),
        (public.get_repository_catalog_data, {"repositoryName": "web/app"}),
        (public.delete_repository, {"repositoryName": "web/app"}),
    ):
        assert aws_error(call, **params)[0] == "RepositoryNotFoundException"


def test_catalog_data_limits(public: Any) -> None:
    public.create_repository(repositoryName="limits/app")
    too_long = "x" * 1025
    code, _ = aws_error(
        public.put_repository_catalog_data,
        repositoryName="limits/app",
        catalogData={"description": too_long},
    )
    assert code == "InvalidParameterException"
    code, message = aws_error(
        public.put_repository_catalog_data,
        repositoryName="limits/app",
        catalogData={"logoImageBlob": png(20, 20)},  # under ECR Public's 60 pixels
    )
    assert (code, "60 to 2048 pixels" in message) == ("InvalidParameterException", True)
    code, _ = aws_error(
        public.put_repository_catalog_data,
        repositoryName="limits/app",
        catalogData={"architectures": [f"arch-{i}" for i in range(51)]},
    )
    assert code == "InvalidParameterException"
    # Nothing of a refused put was stored.
    assert public.get_repository_catalog_data(repositoryName="limits/app")["catalogData"] == {
        "marketplaceCertified": False
    }
    good = public.put_repository_catalog_data(
        repositoryName="limits/app", catalogData={"logoImageBlob": png(120, 80)}
    )["catalogData"]
    assert good["logoUrl"].endswith("/limits/app")


def test_public_and_private_repositories_are_separate(public: Any, iam_server: IamServer) -> None:
    ecr = ecr_client(iam_server.url, iam_server.admin)
    ecr.create_repository(repositoryName="same/name")
    public.create_repository(repositoryName="same/name")
    private_names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    public_names = {r["repositoryName"] for r in public.describe_repositories()["repositories"]}
    assert "same/name" in private_names
    assert "same/name" in public_names
    ecr.create_repository(repositoryName="private/only")
    assert aws_error(public.describe_repositories, repositoryNames=["private/only"])[0] == (
        "RepositoryNotFoundException"
    )
    public.delete_repository(repositoryName="same/name")
    assert ecr.describe_repositories(repositoryNames=["same/name"])["repositories"]


def test_push_through_the_layer_api_and_describe_images_and_tags(public: Any, alias: str) -> None:
    name = "push/app"
    public.create_repository(repositoryName=name)
    config, layer = config_blob("public-1"), b"public layer" * 100
    digest, manifest = put_image(public, name, config, [layer], tag="v1")
    # The registry alias names the registry where the model allows it.
    retagged = public.put_image(
        registryId=alias, repositoryName=name, imageManifest=manifest.decode(), imageTag="latest"
    )["image"]
    assert retagged["imageId"] == {"imageDigest": digest, "imageTag": "latest"}
    assert (
        aws_error(
            public.put_image,
            registryId="nosuchalias",
            repositoryName=name,
            imageManifest=manifest.decode(),
        )[0]
        == "RegistryNotFoundException"
    )
    layers = public.batch_check_layer_availability(
        repositoryName=name, layerDigests=[digest_of(layer), "sha256:" + "0" * 64]
    )["layers"]
    assert [entry["layerAvailability"] for entry in layers] == ["AVAILABLE", "UNAVAILABLE"]
    (detail,) = public.describe_images(repositoryName=name)["imageDetails"]
    assert detail["imageDigest"] == digest
    assert detail["imageTags"] == ["v1", "latest"]
    assert detail["imageSizeInBytes"] == len(config) + len(layer)
    assert detail["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"
    tags = public.describe_image_tags(repositoryName=name)["imageTagDetails"]
    assert [t["imageTag"] for t in tags] == ["v1", "latest"]
    assert {t["imageDetail"]["imageDigest"] for t in tags} == {digest}
    deleted = public.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "latest"}])
    assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "latest"}]
    assert aws_error(public.delete_repository, repositoryName=name)[0] == (
        "RepositoryNotEmptyException"
    )
    public.delete_repository(repositoryName=name, force=True)


def test_an_unknown_upload_and_a_second_upload_of_a_layer(public: Any) -> None:
    name = "layers/app"
    public.create_repository(repositoryName=name)
    upload_blob(public, name, b"one layer")
    upload_id = public.initiate_layer_upload(repositoryName=name)["uploadId"]
    public.upload_layer_part(
        repositoryName=name,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=8,
        layerPartBlob=b"one layer",
    )
    code, _ = aws_error(
        public.complete_layer_upload,
        repositoryName=name,
        uploadId=upload_id,
        layerDigests=[digest_of(b"one layer")],
    )
    assert code == "LayerAlreadyExistsException"
    code, _ = aws_error(
        public.upload_layer_part,
        repositoryName=name,
        uploadId="00000000-0000-4000-8000-000000000000",
        partFirstByte=0,
        partLastByte=0,
        layerPartBlob=b"x",
    )
    assert code == "UploadNotFoundException"


def test_repository_policies_and_tags(public: Any, iam_server: IamServer) -> None:
    name = "policy/app"
    arn = public.create_repository(repositoryName=name)["repository"]["repositoryArn"]
    assert aws_error(public.get_repository_policy, repositoryName=name)[0] == (
        "RepositoryPolicyNotFoundException"
    )
    text = resource_policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{iam_server.admin.account_id}:root"},
            "Action": ["ecr-public:BatchCheckLayerAvailability", "ecr-public:PutImage"],
        }
    )
    assert public.set_repository_policy(repositoryName=name, policyText=text)["policyText"] == text
    assert public.get_repository_policy(repositoryName=name)["policyText"] == text
    assert public.delete_repository_policy(repositoryName=name)["policyText"] == text
    public.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}])
    public.tag_resource(resourceArn=arn, tags=[{"Key": "b", "Value": "2"}])
    public.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert public.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    # ECR's ARN form names no public repository.
    private_arn = f"arn:aws:ecr:us-east-1:{iam_server.admin.account_id}:repository/{name}"
    assert aws_error(public.list_tags_for_resource, resourceArn=private_arn)[0] == (
        "InvalidParameterException"
    )


def test_authorization_token_needs_the_bearer_token_action(iam_server: IamServer) -> None:
    admin = public_client(iam_server.url, iam_server.admin)
    data = admin.get_authorization_token()["authorizationData"]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    assert user == "AWS"
    assert password
    account = iam_server.admin.account_id
    half = create_user(
        iam_server.process.data_dir,
        account,
        "public-half",
        allow("ecr-public:GetAuthorizationToken"),
    )
    code, message = aws_error(public_client(iam_server.url, half).get_authorization_token)
    assert code == "AccessDeniedException"
    assert "sts:GetServiceBearerToken" in message
    both = create_user(
        iam_server.process.data_dir,
        account,
        "public-both",
        allow(["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"]),
    )
    assert public_client(iam_server.url, both).get_authorization_token()["authorizationData"]


def test_ecr_public_actions_on_ecr_public_arns(public: Any, iam_server: IamServer) -> None:
    account = iam_server.admin.account_id
    public.create_repository(repositoryName="authz/app")
    data_dir = iam_server.process.data_dir
    reader = create_user(
        data_dir,
        account,
        "public-reader",
        allow(
            ["ecr-public:DescribeRepositories", "ecr-public:DescribeImages"],
            f"arn:aws:ecr-public::{account}:repository/authz/*",
        ),
    )
    client = public_client(iam_server.url, reader)
    assert client.describe_repositories(repositoryNames=["authz/app"])["repositories"]
    assert client.describe_images(repositoryName="authz/app")["imageDetails"] == []
    code, message = aws_error(client.create_repository, repositoryName="authz/other")
    assert code == "AccessDeniedException"
    assert message.startswith(
        f"User: arn:aws:iam::{account}:user/public-reader is not authorized to perform: "
        f"ecr-public:CreateRepository on resource: arn:aws:ecr-public::{account}:repository/"
        "authz/other"
    )
    # ECR's actions grant nothing on ECR Public, and the other way round.
    private_only = create_user(data_dir, account, "private-only", allow("ecr:*"))
    code, _ = aws_error(
        public_client(iam_server.url, private_only).describe_images, repositoryName="authz/app"
    )
    assert code == "AccessDeniedException"
    assert aws_error(ecr_client(iam_server.url, reader).describe_repositories)[0] == (
        "AccessDeniedException"
    )
    # A repository policy grants another user of the account what its identity lacks not.
    outsider = create_user(data_dir, account, "public-outsider")
    outsider_client = public_client(iam_server.url, outsider)
    assert aws_error(outsider_client.describe_images, repositoryName="authz/app")[0] == (
        "AccessDeniedException"
    )
    public.set_repository_policy(
        repositoryName="authz/app",
        policyText=resource_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:user/public-outsider"},
                "Action": "ecr-public:DescribeImages",
            }
        ),
    )
    assert outsider_client.describe_images(repositoryName="authz/app")["imageDetails"] == []


@pytest.mark.parametrize("operation", sorted(NOT_OFFERED))
def test_marketplace_operations_are_not_offered(public: Any, operation: str) -> None:
    model = service_model("ecr-public").operation_model(operation)
    required = model.input_shape.required_members if model.input_shape else []
    fillers: dict[str, Any] = {
        "repositoryName": "nothing/here",
        "registryId": "123456789012",
        "associatedRepositoryName": "nothing/else",
        "repositoryType": "FREE",
        "associatedRepositoryType": "FREE",
        "imageId": {"imageTag": "v1"},
        "status": "ACTIVE",
        "state": "AVAILABLE",
        "policyText": "{}",
        "registryAlias": "alias",
        "reportId": "r" * 10,
        "marketplaceProducts": ["prod"],
        "catalogData": {},
    }
    params = {name: fillers[name] for name in required}
    method = getattr(public, _snake(operation))
    code, message = aws_error(method, **params)
    assert code == "UnsupportedCommandException"
    assert operation in message


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def test_the_aws_cli_creates_and_describes(iam_server: IamServer, tmp_path: Path) -> None:
    created = aws_json(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr-public",
        "create-repository",
        "--repository-name",
        "cli/app",
        "--catalog-data",
        "description=From the CLI,operatingSystems=Linux",
    )
    assert created["catalogData"]["description"] == "From the CLI"
    described = aws_json(
        iam_server.url, iam_server.admin, tmp_path, "ecr-public", "describe-repositories"
    )
    assert "cli/app" in {r["repositoryName"] for r in described["repositories"]}
