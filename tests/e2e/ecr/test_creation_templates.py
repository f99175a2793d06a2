"""Repository creation templates over the ECR API (boto3), and the settings they give a
repository a push creates (CREATE_ON_PUSH); replication and the pull-through cache apply
theirs in test_replication.py and test_pull_through_cache.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.aws import admin_init, ecr_client
from tests.e2e.client import RegistryClient
from tests.e2e.ecr.helpers import login_password
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "pull",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": ["ecr:BatchGetImage"],
            }
        ],
    }
)
LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Any]]:
    data_dir = tmp_path_factory.mktemp("templates") / "data"
    admin = admin_init(data_dir)
    process = ServerProcess(
        data_dir=data_dir, emulator=False, extra_args=["--create-on-push", "team/*"]
    ).start()
    yield process, ecr_client(process.url, admin)
    assert process.stop() == 0, process.log()


def test_template_operations(server: tuple[ServerProcess, Any]) -> None:
    _, ecr = server
    created = ecr.create_repository_creation_template(
        prefix="prod/",
        description="production images",
        appliedFor=["REPLICATION", "PULL_THROUGH_CACHE"],
        imageTagMutability="IMMUTABLE",
        resourceTags=[{"Key": "team", "Value": "web"}],
    )["repositoryCreationTemplate"]
    assert created["prefix"] == "prod"
    assert created["appliedFor"] == ["REPLICATION", "PULL_THROUGH_CACHE"]
    assert created["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert created["createdAt"] == created["updatedAt"]
    with pytest.raises(ecr.exceptions.TemplateAlreadyExistsException):
        ecr.create_repository_creation_template(prefix="prod", appliedFor=["REPLICATION"])
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.create_repository_creation_template(
            prefix="broken", appliedFor=["REPLICATION"], lifecyclePolicy='{"rules": "no"}'
        )
    updated = ecr.update_repository_creation_template(prefix="prod", description="changed")[
        "repositoryCreationTemplate"
    ]
    assert updated["description"] == "changed"
    assert updated["imageTagMutability"] == "IMMUTABLE"  # what the update did not name stays
    listed = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert [t["prefix"] for t in listed] == ["prod"]
    assert (
        ecr.describe_repository_creation_templates(prefixes=["absent"])[
            "repositoryCreationTemplates"
        ]
        == []
    )
    with pytest.raises(ecr.exceptions.TemplateNotFoundException):
        ecr.update_repository_creation_template(prefix="absent", description="x")
    deleted = ecr.delete_repository_creation_template(prefix="prod")
    assert deleted["repositoryCreationTemplate"]["description"] == "changed"
    with pytest.raises(ecr.exceptions.TemplateNotFoundException):
        ecr.delete_repository_creation_template(prefix="prod")


def test_create_on_push_takes_the_longest_matching_template(
    server: tuple[ServerProcess, Any],
) -> None:
    process, ecr = server
    ecr.create_repository_creation_template(
        prefix="ROOT", appliedFor=["CREATE_ON_PUSH"], imageTagMutability="MUTABLE"
    )
    ecr.create_repository_creation_template(
        prefix="team",
        appliedFor=["CREATE_ON_PUSH"],
        imageTagMutability="IMMUTABLE",
        resourceTags=[{"Key": "owner", "Value": "team"}],
        repositoryPolicy=POLICY,
        lifecyclePolicy=LIFECYCLE,
    )
    # A template for another kind of creation does not apply to pushes.
    ecr.create_repository_creation_template(
        prefix="team/web", appliedFor=["REPLICATION"], imageTagMutability="MUTABLE"
    )
    with RegistryClient(process.url) as registry:
        registry.session.auth = ("AWS", login_password(ecr))
        registry.push_image("team/web/app", "v1", b'{"os":"linux"}', [b"layer"])
    (repository,) = ecr.describe_repositories(repositoryNames=["team/web/app"])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    arn = repository["repositoryArn"]
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "owner", "Value": "team"}
    ]
    policy = ecr.get_repository_policy(repositoryName="team/web/app")["policyText"]
    assert json.loads(policy) == json.loads(POLICY)
    lifecycle = ecr.get_lifecycle_policy(repositoryName="team/web/app")["lifecyclePolicyText"]
    assert json.loads(lifecycle) == json.loads(LIFECYCLE)
    for prefix in ("ROOT", "team", "team/web"):
        ecr.delete_repository_creation_template(prefix=prefix)
