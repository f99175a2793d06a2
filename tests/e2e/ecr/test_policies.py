"""Repository and registry policies over boto3, against a real server with IAM on: the
Set/Get/DeleteRepositoryPolicy and Put/Get/DeleteRegistryPolicy operations, and what the
policies then allow: the same account (one allow suffices, an explicit deny wins), another
account (both its identity policy and the repository policy must allow), and the registry
policy's scope."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import REGION, Credentials, ecr_client
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import (
    admin,
    allow,
    aws_error,
    create_user,
    push,
    resource_policy,
    small_layout,
)

pytestmark = pytest.mark.e2e

OTHER_ACCOUNT = "210987654321"
INVALID_REPOSITORY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid repository policy provided'"
)
INVALID_REGISTRY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid registry policy provided'"
)


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def raw(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin, parameter_validation=False)


@pytest.fixture
def registry_policy_cleanup(ecr: Any) -> Iterator[None]:
    """Leave the shared server with no registry policy and the default scope (V2)."""
    yield
    ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")
    with contextlib.suppress(ecr.exceptions.RegistryPolicyNotFoundException):
        ecr.delete_registry_policy()


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def repository_arn(account: str, name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{account}:repository/{name}"


# -- Repository policies ---------------------------------------------------------------------


def test_repository_policy_round_trip(ecr: Any, iam_server: IamServer) -> None:
    account = iam_server.admin.account_id
    ecr.create_repository(repositoryName="policy/crud")
    # Stored and returned byte for byte, white space and key order included.
    text = (
        '{ "Version":"2008-10-17",\n  "Statement":[{"Sid":"pull","Effect":"Allow",'
        '"Principal":{"AWS":"arn:aws:iam::' + account + ':root"},"Action":["ecr:BatchGetImage"]}]}'
    )
    answer = ecr.set_repository_policy(repositoryName="policy/crud", policyText=text)
    assert answer["registryId"] == account
    assert answer["repositoryName"] == "policy/crud"
    assert answer["policyText"] == text
    assert ecr.get_repository_policy(repositoryName="policy/crud")["policyText"] == text
    # force is accepted (ECR's lock-out guard) and replaces the policy as without it.
    second = resource_policy({"Effect": "Allow", "Principal": "*", "Action": "ecr:DescribeImages"})
    ecr.set_repository_policy(repositoryName="policy/crud", policyText=second, force=True)
    deleted = ecr.delete_repository_policy(repositoryName="policy/crud")
    assert deleted == {
        "registryId": account,
        "repositoryName": "policy/crud",
        "policyText": second,
        "ResponseMetadata": deleted["ResponseMetadata"],
    }
    missing = (
        "Repository policy does not exist for the repository with name 'policy/crud' "
        f"in the registry with id '{account}'"
    )
    for call in (ecr.get_repository_policy, ecr.delete_repository_policy):
        assert aws_error(call, repositoryName="policy/crud") == (
            "RepositoryPolicyNotFoundException",
            missing,
        )


INVALID_POLICIES = [
    "",
    "not json",
    "[]",
    "{}",
    '{"Version": "2012-10-17", "Statement": []}',
    # A resource policy must say whom it is about.
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}',
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Maybe", "Principal": "*", "Action": "ecr:*"}]}',
    '{"Version": "1999-01-01", "Statement": '
    '[{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}',
]


@pytest.mark.parametrize(("index", "text"), list(enumerate(INVALID_POLICIES)))
def test_invalid_policies_are_refused(ecr: Any, index: int, text: str) -> None:
    name = f"policy/invalid-{index}"
    ecr.create_repository(repositoryName=name)
    assert aws_error(ecr.set_repository_policy, repositoryName=name, policyText=text) == (
        "InvalidParameterException",
        INVALID_REPOSITORY_POLICY,
    )
    assert aws_error(ecr.get_repository_policy, repositoryName=name)[0] == (
        "RepositoryPolicyNotFoundException"
    )
    assert aws_error(ecr.put_registry_policy, policyText=text) == (
        "InvalidParameterException",
        INVALID_REGISTRY_POLICY,
    )


def test_policy_text_over_10240_characters_is_refused(raw: Any, ecr: Any) -> None:
    ecr.create_repository(repositoryName="policy/long")
    statement = {"Effect": "Allow", "Principal": "*", "Action": "ecr:DescribeImages"}
    text = resource_policy(statement)
    text = text[:-1] + " " * (10_241 - len(text)) + "}"
    assert len(text) == 10_241
    code, message = aws_error(
        raw.set_repository_policy, repositoryName="policy/long", policyText=text
    )
    assert code == "InvalidParameterException"
    assert "10240" in message
    code, message = aws_error(raw.put_registry_policy, policyText=text)
    assert code == "InvalidParameterException"
    assert "10240" in message


def test_repository_policy_of_unknown_repository(ecr: Any, iam_server: IamServer) -> None:
    text = resource_policy({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"})
    message = (
        "The repository with name 'policy/nowhere' does not exist in the registry with id "
        f"'{iam_server.admin.account_id}'"
    )
    expected = ("RepositoryNotFoundException", message)
    assert aws_error(
        ecr.set_repository_policy, repositoryName="policy/nowhere", policyText=text
    ) == (expected)
    assert aws_error(ecr.get_repository_policy, repositoryName="policy/nowhere") == expected
    assert aws_error(ecr.delete_repository_policy, repositoryName="policy/nowhere") == expected


# -- Registry policy -------------------------------------------------------------------------


@pytest.mark.usefixtures("registry_policy_cleanup")
def test_registry_policy_round_trip(ecr: Any, iam_server: IamServer) -> None:
    account = iam_server.admin.account_id
    missing = (
        "RegistryPolicyNotFoundException",
        f"Registry policy does not exist in the registry with id '{account}'",
    )
    assert aws_error(ecr.get_registry_policy) == missing
    assert aws_error(ecr.delete_registry_policy) == missing
    text = resource_policy(
        {
            "Sid": "replication",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
            "Resource": f"arn:aws:ecr:{REGION}:{account}:repository/*",
        }
    )
    assert ecr.put_registry_policy(policyText=text)["policyText"] == text
    got = ecr.get_registry_policy()
    assert (got["registryId"], got["policyText"]) == (account, text)
    deleted = ecr.delete_registry_policy()
    assert (deleted["registryId"], deleted["policyText"]) == (account, text)
    assert aws_error(ecr.get_registry_policy) == missing


# -- What policies allow -----------------------------------------------------------------------


def test_same_account_one_allow_suffices(ecr: Any, iam_server: IamServer) -> None:
    account = iam_server.admin.account_id
    for name in ("policy/granted", "policy/not-granted"):
        ecr.create_repository(repositoryName=name)
    user = create_user(iam_server.process.data_dir, account, "no-identity-policy")
    client = ecr_client(iam_server.url, user)
    code, message = aws_error(client.describe_repositories, repositoryNames=["policy/granted"])
    assert code == "AccessDeniedException"
    assert message.startswith(
        f"User: {user_arn(account, 'no-identity-policy')} is not authorized to perform: "
        f"ecr:DescribeRepositories on resource: {repository_arn(account, 'policy/granted')}"
    )
    ecr.set_repository_policy(
        repositoryName="policy/granted",
        policyText=resource_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": user_arn(account, "no-identity-policy")},
                "Action": "ecr:DescribeRepositories",
            }
        ),
    )
    found = client.describe_repositories(repositoryNames=["policy/granted"])["repositories"]
    assert [r["repositoryName"] for r in found] == ["policy/granted"]
    assert aws_error(client.describe_repositories, repositoryNames=["policy/not-granted"])[0] == (
        "AccessDeniedException"
    )
    # Listing every repository is a question about the registry ("*"): not granted.
    assert aws_error(client.describe_repositories)[0] == "AccessDeniedException"


def test_explicit_deny_in_a_repository_policy_wins(ecr: Any, iam_server: IamServer) -> None:
    account = iam_server.admin.account_id
    ecr.create_repository(repositoryName="policy/protected")
    ecr.set_repository_policy(
        repositoryName="policy/protected",
        policyText=resource_policy(
            {
                "Sid": "NoDeletes",
                "Effect": "Deny",
                "Principal": {"AWS": user_arn(account, "admin")},
                "Action": "ecr:DeleteRepository",
            }
        ),
    )
    code, message = aws_error(ecr.delete_repository, repositoryName="policy/protected")
    assert code == "AccessDeniedException"
    assert message.endswith("with an explicit deny")
    ecr.delete_repository_policy(repositoryName="policy/protected")
    ecr.delete_repository(repositoryName="policy/protected")


@pytest.mark.usefixtures("registry_policy_cleanup")
def test_registry_policy_applies_to_every_action_in_scope_v2_only(
    ecr: Any, iam_server: IamServer
) -> None:
    account = iam_server.admin.account_id
    ecr.create_repository(repositoryName="policy/by-registry")
    user = create_user(iam_server.process.data_dir, account, "registry-granted")
    client = ecr_client(iam_server.url, user)
    assert aws_error(client.describe_repositories, repositoryNames=["policy/by-registry"])[0] == (
        "AccessDeniedException"
    )
    ecr.put_registry_policy(
        policyText=resource_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": user_arn(account, "registry-granted")},
                "Action": "ecr:DescribeRepositories",
                "Resource": f"arn:aws:ecr:{REGION}:{account}:repository/policy/*",
            }
        )
    )
    client.describe_repositories(repositoryNames=["policy/by-registry"])
    # V1 limits the registry policy to replication, pull-through import and creation.
    ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    assert aws_error(client.describe_repositories, repositoryNames=["policy/by-registry"])[0] == (
        "AccessDeniedException"
    )


@pytest.fixture(scope="module")
def other_account(iam_server: IamServer) -> str:
    """A second account on the same server, made with ``moorage admin init``."""
    out = admin(
        iam_server.process.data_dir, "init", "--account-id", OTHER_ACCOUNT, "--name", "other"
    )
    assert OTHER_ACCOUNT in out
    return OTHER_ACCOUNT


def test_another_account_needs_both_its_identity_policy_and_the_repository_policy(
    ecr: Any, iam_server: IamServer, other_account: str, tmp_path: Path
) -> None:
    owner = iam_server.admin.account_id
    name = "shared/base-image"
    arn = repository_arn(owner, name)
    ecr.create_repository(repositoryName=name)
    push(ecr, iam_server.process.host, small_layout(tmp_path / "layout", tag="v1"), name)
    reader_actions = ["ecr:DescribeImages", "ecr:BatchGetImage", "ecr:DescribeRepositories"]
    reader: Credentials = create_user(
        iam_server.process.data_dir, other_account, "reader", allow(reader_actions, arn)
    )
    bystander = create_user(iam_server.process.data_dir, other_account, "bystander")
    as_reader = ecr_client(iam_server.url, reader)
    as_bystander = ecr_client(iam_server.url, bystander)

    def describe(client: Any) -> Any:
        return client.describe_images(registryId=owner, repositoryName=name)

    def get(client: Any) -> Any:
        return client.batch_get_image(
            registryId=owner, repositoryName=name, imageIds=[{"imageTag": "v1"}]
        )

    # Its identity policy alone does not open another account's repository.
    for call in (describe, get):
        code, message = aws_error(call, client=as_reader)
        assert code == "AccessDeniedException"
        assert message.startswith(f"User: {user_arn(other_account, 'reader')} is not authorized")
        assert "because no resource-based policy allows" in message
    ecr.set_repository_policy(
        repositoryName=name,
        policyText=resource_policy(
            {
                "Sid": "OtherAccountPulls",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{other_account}:root"},
                "Action": reader_actions,
            }
        ),
    )
    # The index (tagged v1) and its one platform manifest (untagged).
    images = describe(as_reader)["imageDetails"]
    assert {(i["registryId"], i["repositoryName"]) for i in images} == {(owner, name)}
    assert sorted(tuple(i.get("imageTags", ())) for i in images) == [(), ("v1",)]
    got = get(as_reader)
    assert got["failures"] == []
    assert [i["imageId"]["imageTag"] for i in got["images"]] == ["v1"]
    assert json.loads(got["images"][0]["imageManifest"])["schemaVersion"] == 2
    found = as_reader.describe_repositories(registryId=owner, repositoryNames=[name])
    assert found["repositories"][0]["repositoryArn"] == arn
    # The repository policy alone does not either: the bystander's account allows it
    # nothing.
    for call in (describe, get):
        assert aws_error(call, client=as_bystander)[0] == "AccessDeniedException"
    # Nor does it reach anything the policy does not name.
    code, _ = aws_error(
        as_reader.set_repository_policy,
        registryId=owner,
        repositoryName=name,
        policyText=resource_policy({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}),
    )
    assert code == "AccessDeniedException"
    ecr.delete_repository_policy(repositoryName=name)
    assert aws_error(describe, client=as_reader)[0] == "AccessDeniedException"
