"""ECR actions (IAM service prefix ``ecr``) and the ARNs they apply to.

Every ECR API operation is authorized as the action of the same name, except
``ListImageReferrers``, which AWS authorizes as ``ecr:BatchGetImage``. ``/v2/`` requests are
authorized as the action the equivalent API call needs (see ``protocols/oci/routes.py``).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

PARTITION = "aws"


class Action(StrEnum):
    BATCH_GET_IMAGE = "ecr:BatchGetImage"
    GET_DOWNLOAD_URL_FOR_LAYER = "ecr:GetDownloadUrlForLayer"
    BATCH_CHECK_LAYER_AVAILABILITY = "ecr:BatchCheckLayerAvailability"
    INITIATE_LAYER_UPLOAD = "ecr:InitiateLayerUpload"
    UPLOAD_LAYER_PART = "ecr:UploadLayerPart"
    COMPLETE_LAYER_UPLOAD = "ecr:CompleteLayerUpload"
    PUT_IMAGE = "ecr:PutImage"
    BATCH_DELETE_IMAGE = "ecr:BatchDeleteImage"
    LIST_IMAGES = "ecr:ListImages"
    DESCRIBE_REPOSITORIES = "ecr:DescribeRepositories"
    DESCRIBE_IMAGES = "ecr:DescribeImages"
    CREATE_REPOSITORY = "ecr:CreateRepository"
    DELETE_REPOSITORY = "ecr:DeleteRepository"
    TAG_RESOURCE = "ecr:TagResource"
    GET_AUTHORIZATION_TOKEN = "ecr:GetAuthorizationToken"


# Operations authorized as another operation's action.
_ACTION_OF_OPERATION = {"ListImageReferrers": Action.BATCH_GET_IMAGE.value}

# Operations whose resource is the registry ("*") rather than one repository.
REGISTRY_OPERATIONS = frozenset(
    {
        "GetAuthorizationToken",
        "DescribeRegistry",
        "PutRegistryPolicy",
        "GetRegistryPolicy",
        "DeleteRegistryPolicy",
        "GetAccountSetting",
        "PutAccountSetting",
        "PutReplicationConfiguration",
        "PutRegistryScanningConfiguration",
        "GetRegistryScanningConfiguration",
        "CreatePullThroughCacheRule",
        "DeletePullThroughCacheRule",
        "DescribePullThroughCacheRules",
        "UpdatePullThroughCacheRule",
        "ValidatePullThroughCacheRule",
        "CreateRepositoryCreationTemplate",
        "DeleteRepositoryCreationTemplate",
        "DescribeRepositoryCreationTemplates",
        "UpdateRepositoryCreationTemplate",
        "PutSigningConfiguration",
        "GetSigningConfiguration",
        "DeleteSigningConfiguration",
        "RegisterPullTimeUpdateExclusion",
        "DeregisterPullTimeUpdateExclusion",
        "ListPullTimeUpdateExclusions",
    }
)


def action_of_operation(operation: str) -> str:
    """The IAM action an ECR API operation is authorized as."""
    return _ACTION_OF_OPERATION.get(operation, f"ecr:{operation}")


def repository_arn(region: str, registry_id: str, name: str, partition: str = PARTITION) -> str:
    """``arn:<partition>:ecr:<region>:<account>:repository/<name>`` (slashes kept)."""
    return f"arn:{partition}:ecr:{region}:{registry_id}:repository/{name}"


def public_repository_arn(registry_id: str, name: str, partition: str = PARTITION) -> str:
    """ECR Public's ``arn:<partition>:ecr-public::<account>:repository/<name>`` (no region)."""
    return f"arn:{partition}:ecr-public::{registry_id}:repository/{name}"


def public_registry_arn(registry_id: str, partition: str = PARTITION) -> str:
    return f"arn:{partition}:ecr-public::{registry_id}:registry/{registry_id}"


# Names the AWS-managed key of each (account, region): a UUID derived from them, so that it
# is the same in every answer and on every node.
_MANAGED_KEY_NAMESPACE = uuid.UUID("8f0c5d3e-6a43-4f5e-9b1e-2f3c4d5e6a7b")


def aws_managed_ecr_key_arn(region: str, account: str, partition: str = PARTITION) -> str:
    """The ARN of the account's AWS-managed key for ECR (``alias/aws/ecr``), which ECR shows
    as ``kmsKey`` of a repository created with encryption type KMS and no key."""
    key_id = uuid.uuid5(_MANAGED_KEY_NAMESPACE, f"{partition}:{region}:{account}:aws/ecr")
    return f"arn:{partition}:kms:{region}:{account}:key/{key_id}"


def user_arn(registry_id: str, name: str, path: str = "/", partition: str = PARTITION) -> str:
    """``arn:aws:iam::<account>:user<path><name>``; the path starts and ends with ``/``."""
    return f"arn:{partition}:iam::{registry_id}:user{path}{name}"


def account_root_arn(registry_id: str, partition: str = PARTITION) -> str:
    return f"arn:{partition}:iam::{registry_id}:root"
