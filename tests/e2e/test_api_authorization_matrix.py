"""The authorization matrix of the ECR API: every implemented operation, as every kind of
caller, against a real server with IAM on (the ``/v2/`` twin is
``tests/api/test_authorization_matrix.py``).

The owner's account holds ``matrix/app`` (empty, with a repository policy); the callers are
the ``/v2/`` matrix's:

- ``anonymous``: an unsigned request -> ``MissingAuthenticationTokenException`` everywhere;
- ``alice``: the owner's user, allowed ``ecr:*`` by her identity policy -> the operation's
  answer;
- ``ivan``: the owner's user with no identity policy, named by the repository policy -> the
  answer on the repository (same account: one allow suffices), denied on the registry;
- ``dora``: allowed ``*`` but denied ``ecr:*`` on ``repository/matrix/*`` by her identity
  policy -> denied on the repository, the answer on the registry (the deny names no
  registry resource);
- ``rita``: allowed by identity, denied by the repository policy -> denied on the repository,
  the answer on the registry;
- ``mallory``: another account's user, allowed ``ecr:*`` by identity, not named by the
  repository policy -> denied on the repository (across accounts both sides must allow);
- ``eve``: another account's user, allowed by identity and by the repository policy ->
  the answer on the repository.

Callers of the other account address the owner's repository with ``registryId`` (or the
repository's ARN). "Denied" is ``AccessDeniedException``. Each operation's parameters are chosen
so that an allowed caller gets a deterministic answer that leaves the shared repository as it
was; a not-found error counts as allowed (the call got past authorization):

- CreateRepository: ``matrix/app`` again -> ``RepositoryAlreadyExistsException``;
- DescribeRepositories: ``repositoryNames=[matrix/app]`` -> success (a repository question);
- DeleteRepository, SetRepositoryPolicy, DeleteRepositoryPolicy: a scratch repository per cell
  (made by the owner's admin with the shared repository policy) -> success;
- PutImageTagMutability (``MUTABLE``), PutImageScanningConfiguration (``scanOnPush`` false),
  TagResource (the tag the fixture set), UntagResource (an absent key): idempotent -> success;
- ListImages, DescribeImages, GetRepositoryPolicy, ListTagsForResource -> success;
- BatchGetImage, BatchDeleteImage (an absent tag), BatchCheckLayerAvailability (an absent
  digest): success with the miss in ``failures``;
- PutImage (a manifest whose blobs were never pushed) -> ``LayersNotFoundException``;
- InitiateLayerUpload -> success (an upload session nobody completes);
- UploadLayerPart, CompleteLayerUpload (an unknown upload id) -> ``UploadNotFoundException``;
- GetDownloadUrlForLayer (an absent digest) -> ``LayersNotFoundException``;
- ListImageReferrers (an absent subject) -> success, no referrers;
- PutLifecyclePolicy: a scratch repository per cell -> success; Get/DeleteLifecyclePolicy and
  StartLifecyclePolicyPreview (``matrix/app`` has no policy) -> ``LifecyclePolicyNotFound
  Exception``; GetLifecyclePolicyPreview -> ``LifecyclePolicyPreviewNotFoundException``.

Registry-level operations (GetAuthorizationToken, Put/Get/DeleteRegistryPolicy,
DescribeRegistry, Get/PutAccountSetting) are authorized on ``*`` of the caller's own registry
(they take no ``registryId``; mallory and eve act on theirs): denied to ivan (no identity
policy), the answer to everyone else. Get/DeleteRegistryPolicy -> ``RegistryPolicyNotFound
Exception`` (no registry policy is left in place); PutRegistryPolicy -> success, removed after
the cell by the account's admin (under scope V2 it would govern every other cell);
PutAccountSetting writes ``BASIC_SCAN_TYPE_VERSION`` = its default.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore import UNSIGNED  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from tests.e2e.aws import REGION, Credentials, admin_init, ecr_client
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import allow, create_user, resource_policy

pytestmark = pytest.mark.e2e

OTHER = "222222222222"
REPOSITORY = "matrix/app"
DENIED = "AccessDeniedException"
ANONYMOUS = "MissingAuthenticationTokenException"
SUCCESS = None  # an operation's outcome: None for success, else the error code
ABSENT_DIGEST = "sha256:" + "0" * 64
UNKNOWN_UPLOAD = "00000000-0000-4000-8000-000000000000"
CALLERS = ["anonymous", "alice", "ivan", "dora", "rita", "mallory", "eve"]
# Who gets the operation's answer on the shared repository, and on their own registry.
REPOSITORY_ALLOWED = {"alice", "ivan", "eve"}
REGISTRY_ALLOWED = {"alice", "dora", "rita", "mallory", "eve"}


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def repository_arn(account: str, name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{account}:repository/{name}"


@dataclass(frozen=True)
class World:
    """The server, the owner's account and a client per caller (and per account's admin)."""

    owner: str
    clients: dict[str, Any]
    admins: dict[str, Any]
    repository_policy: str

    def account_of(self, caller: str) -> str:
        return OTHER if caller in {"mallory", "eve"} else self.owner


@pytest.fixture(scope="module")
def world(iam_server: IamServer) -> World:
    data_dir = iam_server.process.data_dir
    owner = iam_server.admin.account_id
    other_admin = admin_init(data_dir, "--account-id", OTHER, "--name", "other")
    ecr_all = allow("ecr:*")
    dora_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:*", "Resource": repository_arn(owner, "matrix/*")},
        ],
    }
    users: dict[str, Credentials] = {
        "alice": create_user(data_dir, owner, "alice", ecr_all),
        "ivan": create_user(data_dir, owner, "ivan"),
        "dora": create_user(data_dir, owner, "dora", dora_policy),
        "rita": create_user(data_dir, owner, "rita", ecr_all),
        "mallory": create_user(data_dir, OTHER, "mallory", ecr_all),
        "eve": create_user(data_dir, OTHER, "eve", ecr_all),
    }
    policy = resource_policy(
        {
            "Sid": "TeamAndPartner",
            "Effect": "Allow",
            "Principal": {"AWS": [user_arn(owner, "ivan"), user_arn(OTHER, "eve")]},
            "Action": "ecr:*",
        },
        {
            "Sid": "NotRita",
            "Effect": "Deny",
            "Principal": {"AWS": user_arn(owner, "rita")},
            "Action": "ecr:*",
        },
    )
    admins = {
        owner: ecr_client(iam_server.url, iam_server.admin),
        OTHER: ecr_client(iam_server.url, other_admin),
    }
    admins[owner].create_repository(
        repositoryName=REPOSITORY, tags=[{"Key": "team", "Value": "matrix"}]
    )
    admins[owner].set_repository_policy(repositoryName=REPOSITORY, policyText=policy)
    clients = {name: ecr_client(iam_server.url, key) for name, key in users.items()}
    clients["anonymous"] = boto3.client(
        "ecr",
        endpoint_url=iam_server.url,
        region_name=REGION,
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    return World(owner, clients, admins, policy)


@dataclass(frozen=True)
class Cell:
    """What one call needs: the owner's account, the caller's, and a scratch repository."""

    owner: str
    account: str
    scratch: str

    @property
    def arn(self) -> str:
        return repository_arn(self.owner, REPOSITORY)

    def repo(self, name: str = REPOSITORY) -> dict[str, str]:
        return {"registryId": self.owner, "repositoryName": name}


Call = Callable[[Any, Cell], Any]


@dataclass(frozen=True)
class Operation:
    name: str
    call: Call
    allowed: str | None  # the answer to a caller who may call it: None (success) or a code
    registry: bool = False  # authorized on the caller's own registry, not the repository
    scratch: bool = False  # acts on a scratch repository made for the cell


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "1" * 64,
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + "2" * 64,
                "size": 3,
            }
        ],
    }
)


def registry_policy(account: str) -> str:
    return resource_policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": ["ecr:ReplicateImage"],
            "Resource": f"arn:aws:ecr:{REGION}:{account}:repository/*",
        }
    )


LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)

OPERATIONS = [
    Operation(
        "CreateRepository",
        lambda c, x: c.create_repository(**x.repo()),
        "RepositoryAlreadyExistsException",
    ),
    Operation(
        "DescribeRepositories",
        lambda c, x: c.describe_repositories(registryId=x.owner, repositoryNames=[REPOSITORY]),
        SUCCESS,
    ),
    Operation(
        "DeleteRepository",
        lambda c, x: c.delete_repository(**x.repo(x.scratch)),
        SUCCESS,
        scratch=True,
    ),
    Operation(
        "PutImageTagMutability",
        lambda c, x: c.put_image_tag_mutability(**x.repo(), imageTagMutability="MUTABLE"),
        SUCCESS,
    ),
    Operation(
        "PutImageScanningConfiguration",
        lambda c, x: c.put_image_scanning_configuration(
            **x.repo(), imageScanningConfiguration={"scanOnPush": False}
        ),
        SUCCESS,
    ),
    Operation("ListImages", lambda c, x: c.list_images(**x.repo()), SUCCESS),
    Operation("DescribeImages", lambda c, x: c.describe_images(**x.repo()), SUCCESS),
    Operation(
        "BatchGetImage",
        lambda c, x: c.batch_get_image(**x.repo(), imageIds=[{"imageTag": "absent"}]),
        SUCCESS,
    ),
    Operation(
        "BatchDeleteImage",
        lambda c, x: c.batch_delete_image(**x.repo(), imageIds=[{"imageTag": "absent"}]),
        SUCCESS,
    ),
    Operation(
        "PutImage",
        lambda c, x: c.put_image(**x.repo(), imageManifest=MANIFEST, imageTag="never"),
        "LayersNotFoundException",
    ),
    Operation(
        "BatchCheckLayerAvailability",
        lambda c, x: c.batch_check_layer_availability(**x.repo(), layerDigests=[ABSENT_DIGEST]),
        SUCCESS,
    ),
    Operation("InitiateLayerUpload", lambda c, x: c.initiate_layer_upload(**x.repo()), SUCCESS),
    Operation(
        "UploadLayerPart",
        lambda c, x: c.upload_layer_part(
            **x.repo(),
            uploadId=UNKNOWN_UPLOAD,
            partFirstByte=0,
            partLastByte=0,
            layerPartBlob=b"x",
        ),
        "UploadNotFoundException",
    ),
    Operation(
        "CompleteLayerUpload",
        lambda c, x: c.complete_layer_upload(
            **x.repo(), uploadId=UNKNOWN_UPLOAD, layerDigests=[ABSENT_DIGEST]
        ),
        "UploadNotFoundException",
    ),
    Operation(
        "GetDownloadUrlForLayer",
        lambda c, x: c.get_download_url_for_layer(**x.repo(), layerDigest=ABSENT_DIGEST),
        "LayersNotFoundException",
    ),
    Operation(
        "GetAuthorizationToken",
        lambda c, x: c.get_authorization_token(),
        SUCCESS,
        registry=True,
    ),
    Operation(
        "SetRepositoryPolicy",
        lambda c, x: c.set_repository_policy(
            **x.repo(x.scratch),
            policyText=resource_policy(
                {"Effect": "Allow", "Principal": "*", "Action": "ecr:DescribeImages"}
            ),
        ),
        SUCCESS,
        scratch=True,
    ),
    Operation("GetRepositoryPolicy", lambda c, x: c.get_repository_policy(**x.repo()), SUCCESS),
    Operation(
        "DeleteRepositoryPolicy",
        lambda c, x: c.delete_repository_policy(**x.repo(x.scratch)),
        SUCCESS,
        scratch=True,
    ),
    Operation(
        "PutRegistryPolicy",
        lambda c, x: c.put_registry_policy(policyText=registry_policy(x.account)),
        SUCCESS,
        registry=True,
    ),
    Operation(
        "GetRegistryPolicy",
        lambda c, x: c.get_registry_policy(),
        "RegistryPolicyNotFoundException",
        registry=True,
    ),
    Operation(
        "DeleteRegistryPolicy",
        lambda c, x: c.delete_registry_policy(),
        "RegistryPolicyNotFoundException",
        registry=True,
    ),
    Operation("DescribeRegistry", lambda c, x: c.describe_registry(), SUCCESS, registry=True),
    Operation(
        "TagResource",
        lambda c, x: c.tag_resource(resourceArn=x.arn, tags=[{"Key": "team", "Value": "matrix"}]),
        SUCCESS,
    ),
    Operation(
        "UntagResource",
        lambda c, x: c.untag_resource(resourceArn=x.arn, tagKeys=["absent"]),
        SUCCESS,
    ),
    Operation(
        "ListTagsForResource",
        lambda c, x: c.list_tags_for_resource(resourceArn=x.arn),
        SUCCESS,
    ),
    Operation(
        "ListImageReferrers",
        lambda c, x: c.list_image_referrers(**x.repo(), subjectId={"imageDigest": ABSENT_DIGEST}),
        SUCCESS,
    ),
    Operation(
        "GetAccountSetting",
        lambda c, x: c.get_account_setting(name="BASIC_SCAN_TYPE_VERSION"),
        SUCCESS,
        registry=True,
    ),
    Operation(
        "PutAccountSetting",
        lambda c, x: c.put_account_setting(name="BASIC_SCAN_TYPE_VERSION", value="AWS_NATIVE"),
        SUCCESS,
        registry=True,
    ),
    Operation(
        "PutLifecyclePolicy",
        lambda c, x: c.put_lifecycle_policy(**x.repo(x.scratch), lifecyclePolicyText=LIFECYCLE),
        SUCCESS,
        scratch=True,
    ),
    Operation(
        "GetLifecyclePolicy",
        lambda c, x: c.get_lifecycle_policy(**x.repo()),
        "LifecyclePolicyNotFoundException",
    ),
    Operation(
        "DeleteLifecyclePolicy",
        lambda c, x: c.delete_lifecycle_policy(**x.repo()),
        "LifecyclePolicyNotFoundException",
    ),
    Operation(
        "StartLifecyclePolicyPreview",
        lambda c, x: c.start_lifecycle_policy_preview(**x.repo()),
        "LifecyclePolicyNotFoundException",
    ),
    Operation(
        "GetLifecyclePolicyPreview",
        lambda c, x: c.get_lifecycle_policy_preview(**x.repo()),
        "LifecyclePolicyPreviewNotFoundException",
    ),
]


def expected(operation: Operation, caller: str) -> str | None:
    if caller == "anonymous":
        return ANONYMOUS
    allowed = REGISTRY_ALLOWED if operation.registry else REPOSITORY_ALLOWED
    return operation.allowed if caller in allowed else DENIED


def outcome(call: Call, client: Any, cell: Cell) -> str | None:
    """None if the call succeeded, else its AWS error code."""
    try:
        call(client, cell)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


@pytest.fixture
def cell(request: pytest.FixtureRequest, world: World) -> Iterator[Cell]:
    operation: Operation = request.node.callspec.params["operation"]
    caller: str = request.node.callspec.params["caller"]
    account = world.account_of(caller)
    scratch = f"matrix/scratch-{operation.name.lower()}-{caller}"
    owner_admin = world.admins[world.owner]
    if operation.scratch:
        owner_admin.create_repository(repositoryName=scratch)
        owner_admin.set_repository_policy(
            repositoryName=scratch, policyText=world.repository_policy
        )
    yield Cell(world.owner, account, scratch)
    if operation.name == "PutRegistryPolicy":
        # Under REGISTRY_POLICY_SCOPE V2 a registry policy would govern every other cell.
        admin = world.admins[account]
        with contextlib.suppress(admin.exceptions.RegistryPolicyNotFoundException):
            admin.delete_registry_policy()
    if operation.scratch:
        with contextlib.suppress(owner_admin.exceptions.RepositoryNotFoundException):
            owner_admin.delete_repository(repositoryName=scratch, force=True)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_operation_as_caller(world: World, cell: Cell, operation: Operation, caller: str) -> None:
    got = outcome(operation.call, world.clients[caller], cell)
    assert got == expected(operation, caller), f"{operation.name} as {caller}"


def test_every_implemented_operation_is_in_the_matrix() -> None:
    assert len({op.name for op in OPERATIONS}) == len(OPERATIONS) == 34
