"""ECR actions (IAM service prefix ``ecr``) and the ARNs they apply to."""

from __future__ import annotations

from enum import StrEnum


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


def repository_arn(partition: str, region: str, registry_id: str, name: str) -> str:
    """``arn:<partition>:ecr:<region>:<account>:repository/<name>`` (slashes kept)."""
    return f"arn:{partition}:ecr:{region}:{registry_id}:repository/{name}"
