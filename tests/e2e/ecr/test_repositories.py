"""Repository operations of the ECR API over boto3 and the AWS CLI, against a real server with
IAM on: CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability,
PutImageScanningConfiguration, TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import REGION, aws_cli, aws_json, ecr_client
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import allow, aws_error, create_user, push, small_layout

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def raw(iam_server: IamServer) -> Any:
    """A client that sends what it is given, so that the server's own checks answer."""
    return ecr_client(iam_server.url, iam_server.admin, parameter_validation=False)


def arn_of(server: IamServer, name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{server.admin.account_id}:repository/{name}"


# -- CreateRepository ------------------------------------------------------------------------


def test_create_repository_with_defaults(ecr: Any, iam_server: IamServer) -> None:
    before = datetime.datetime.now(datetime.UTC)
    repository = ecr.create_repository(repositoryName="team-a/web-app")["repository"]
    account = iam_server.admin.account_id
    assert repository["repositoryArn"] == arn_of(iam_server, "team-a/web-app")
    assert repository["registryId"] == account
    assert repository["repositoryName"] == "team-a/web-app"
    # No host template: the URI names the server as the client reached it, so it is pushable.
    assert repository["repositoryUri"] == f"{iam_server.process.host}/team-a/web-app"
    assert before - datetime.timedelta(seconds=2) <= repository["createdAt"]
    assert repository["imageTagMutability"] == "MUTABLE"
    assert "imageTagMutabilityExclusionFilters" not in repository
    assert repository["imageScanningConfiguration"] == {"scanOnPush": False}
    assert repository["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"] == []


def test_create_repository_stores_and_echoes_every_setting(ecr: Any) -> None:
    settings = {
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [
            {"filterType": "WILDCARD", "filter": "latest"},
            {"filterType": "WILDCARD", "filter": "dev-*"},
        ],
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/registry"},
    }
    tags = [{"Key": "team", "Value": "a"}, {"Key": "cost-centre", "Value": ""}]
    created = ecr.create_repository(repositoryName="settings/all", tags=tags, **settings)
    described = ecr.describe_repositories(repositoryNames=["settings/all"])["repositories"][0]
    for repository in (created["repository"], described):
        for key, value in settings.items():
            assert repository[key] == value, key
    listed = ecr.list_tags_for_resource(resourceArn=created["repository"]["repositoryArn"])
    assert listed["tags"] == sorted(tags, key=lambda tag: tag["Key"])


@pytest.mark.parametrize("encryption_type", ["KMS", "KMS_DSSE"])
def test_create_repository_kms_without_key_uses_the_managed_key(
    ecr: Any, iam_server: IamServer, encryption_type: str
) -> None:
    """ECR shows the account's AWS-managed key (alias/aws/ecr) as kmsKey, in every answer."""
    name = f"settings/kms-default-{encryption_type.lower()}"
    repository = ecr.create_repository(
        repositoryName=name, encryptionConfiguration={"encryptionType": encryption_type}
    )["repository"]
    encryption = repository["encryptionConfiguration"]
    assert encryption["encryptionType"] == encryption_type
    account = iam_server.admin.account_id
    assert re.fullmatch(
        rf"arn:aws:kms:us-east-1:{account}:key/[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}",
        encryption["kmsKey"],
    )
    described = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert described["encryptionConfiguration"] == encryption  # the same key every time
    other = ecr.create_repository(
        repositoryName=f"{name}-2", encryptionConfiguration={"encryptionType": "KMS"}
    )["repository"]
    assert other["encryptionConfiguration"]["kmsKey"] == encryption["kmsKey"]  # one per account


def test_create_existing_repository_fails(ecr: Any, iam_server: IamServer) -> None:
    ecr.create_repository(repositoryName="dup")
    code, message = aws_error(ecr.create_repository, repositoryName="dup")
    assert code == "RepositoryAlreadyExistsException"
    assert message == (
        "The repository with name 'dup' already exists in the registry with id "
        f"'{iam_server.admin.account_id}'"
    )


@pytest.mark.parametrize(
    ("params", "code", "text"),
    [
        ({"repositoryName": "Upper"}, "InvalidParameterException", "'repositoryName'"),
        ({"repositoryName": "a"}, "InvalidParameterException", "repositoryName"),
        ({"repositoryName": "bad//name"}, "InvalidParameterException", "repositoryName"),
        (
            {"repositoryName": "enum/bad", "imageTagMutability": "SOMETIMES"},
            "InvalidParameterException",
            "imageTagMutability",
        ),
        (
            {
                "repositoryName": "filters/with-mutable",
                "imageTagMutability": "MUTABLE",
                "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "x"}],
            },
            "InvalidParameterException",
            "imageTagMutabilityExclusionFilters",
        ),
        (
            {"repositoryName": "filters/none", "imageTagMutability": "MUTABLE_WITH_EXCLUSION"},
            "InvalidParameterException",
            "imageTagMutabilityExclusionFilters",
        ),
        (
            {
                "repositoryName": "filters/pattern",
                "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [
                    {"filterType": "WILDCARD", "filter": "no spaces"}
                ],
            },
            "InvalidParameterException",
            "filter",
        ),
        (
            {
                "repositoryName": "filters/six",
                "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [
                    {"filterType": "WILDCARD", "filter": f"t{i}"} for i in range(6)
                ],
            },
            "InvalidParameterException",
            "imageTagMutabilityExclusionFilters",
        ),
        (
            {
                "repositoryName": "enc/aes-key",
                "encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": "k"},
            },
            "InvalidParameterException",
            "kmsKey",
        ),
        (
            {
                "repositoryName": "enc/unknown",
                "encryptionConfiguration": {"encryptionType": "ROT13"},
            },
            "InvalidParameterException",
            "encryptionType",
        ),
        (
            {"repositoryName": "tags/reserved", "tags": [{"Key": "aws:owner", "Value": "x"}]},
            "InvalidTagParameterException",
            "aws:",
        ),
        (
            {"repositoryName": "tags/long-key", "tags": [{"Key": "k" * 129, "Value": "x"}]},
            "InvalidTagParameterException",
            "128",
        ),
        (
            {"repositoryName": "tags/long-value", "tags": [{"Key": "k", "Value": "v" * 257}]},
            "InvalidTagParameterException",
            "256",
        ),
        (
            {
                "repositoryName": "tags/too-many",
                "tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)],
            },
            "TooManyTagsException",
            "The maximum number of tags that can be applied to a repository is 50.",
        ),
    ],
)
def test_create_repository_refuses_invalid_input(
    raw: Any, params: dict[str, Any], code: str, text: str
) -> None:
    actual_code, message = aws_error(raw.create_repository, **params)
    assert actual_code == code
    assert text in message
    assert aws_error(raw.describe_repositories, repositoryNames=[params["repositoryName"]])[0] in {
        "RepositoryNotFoundException",
        "InvalidParameterException",  # the name itself was the problem
    }


def test_a_refused_create_leaves_no_repository(ecr: Any, raw: Any) -> None:
    aws_error(
        raw.create_repository, repositoryName="tags/nothing", tags=[{"Key": "aws:x", "Value": ""}]
    )
    code, _ = aws_error(ecr.describe_repositories, repositoryNames=["tags/nothing"])
    assert code == "RepositoryNotFoundException"


# -- DescribeRepositories --------------------------------------------------------------------


def test_describe_named_repositories_in_the_order_given(ecr: Any) -> None:
    for name in ("named/b", "named/a"):
        ecr.create_repository(repositoryName=name)
    found = ecr.describe_repositories(repositoryNames=["named/b", "named/a", "named/b"])
    assert [r["repositoryName"] for r in found["repositories"]] == ["named/b", "named/a"]
    assert "nextToken" not in found


def test_describe_unknown_repository_fails(ecr: Any, iam_server: IamServer) -> None:
    ecr.create_repository(repositoryName="named/known")
    code, message = aws_error(
        ecr.describe_repositories, repositoryNames=["named/known", "named/unknown"]
    )
    assert code == "RepositoryNotFoundException"
    assert message == (
        "The repository with name 'named/unknown' does not exist in the registry with id "
        f"'{iam_server.admin.account_id}'"
    )


def test_describe_pages_through_every_repository(ecr: Any) -> None:
    names = [f"paged/r{i:02d}" for i in range(7)]
    for name in names:
        ecr.create_repository(repositoryName=name)
    seen: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"maxResults": 3}
    while True:
        page = ecr.describe_repositories(**kwargs)
        assert len(page["repositories"]) <= 3
        seen += [r["repositoryName"] for r in page["repositories"]]
        pages += 1
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert seen == sorted(seen), "binary order of name"
    assert len(seen) == len(set(seen))
    assert set(names) <= set(seen)
    assert pages == -(-len(seen) // 3)
    # boto3's paginator reads the same tokens.
    paginator = ecr.get_paginator("describe_repositories")
    listed = [
        r["repositoryName"]
        for page in paginator.paginate(PaginationConfig={"PageSize": 2})
        for r in page["repositories"]
    ]
    assert listed[: len(seen)] == seen


def test_describe_without_names_defaults_to_pages_of_100(ecr: Any) -> None:
    page = ecr.describe_repositories()
    assert len(page["repositories"]) <= 100


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"repositoryNames": ["named/a"], "nextToken": "abc"}, "nextToken"),
        ({"repositoryNames": ["named/a"], "maxResults": 5}, "maxResults"),
        ({"maxResults": 0}, "maxResults"),
        ({"maxResults": 1001}, "maxResults"),
        ({"repositoryNames": []}, "repositoryNames"),
        ({"repositoryNames": [f"n{i:03d}" for i in range(101)]}, "repositoryNames"),
        ({"nextToken": "not-a-token"}, "nextToken"),
        ({"repositoryNames": ["UPPER"]}, "repositoryName"),
    ],
)
def test_describe_repositories_refuses_invalid_input(
    raw: Any, params: dict[str, Any], text: str
) -> None:
    code, message = aws_error(raw.describe_repositories, **params)
    assert code == "InvalidParameterException"
    assert text in message


# -- DeleteRepository ------------------------------------------------------------------------


def test_delete_empty_repository_returns_it(ecr: Any) -> None:
    created = ecr.create_repository(repositoryName="delete/empty", imageTagMutability="IMMUTABLE")[
        "repository"
    ]
    deleted = ecr.delete_repository(repositoryName="delete/empty")["repository"]
    assert deleted == created
    code, _ = aws_error(ecr.describe_repositories, repositoryNames=["delete/empty"])
    assert code == "RepositoryNotFoundException"


def test_delete_unknown_repository_fails(ecr: Any, iam_server: IamServer) -> None:
    code, message = aws_error(ecr.delete_repository, repositoryName="delete/unknown")
    assert code == "RepositoryNotFoundException"
    assert "'delete/unknown'" in message


def test_delete_repository_with_images_needs_force(
    ecr: Any, iam_server: IamServer, tmp_path: Path
) -> None:
    ecr.create_repository(repositoryName="delete/full", tags=[{"Key": "k", "Value": "v"}])
    push(ecr, iam_server.process.host, small_layout(tmp_path / "layout"), "delete/full")
    code, message = aws_error(ecr.delete_repository, repositoryName="delete/full")
    assert code == "RepositoryNotEmptyException"
    assert message == (
        "The repository with name 'delete/full' in registry with id "
        f"'{iam_server.admin.account_id}' cannot be deleted because it still contains images"
    )
    deleted = ecr.delete_repository(repositoryName="delete/full", force=True)["repository"]
    assert deleted["repositoryName"] == "delete/full"
    # Its tags went with it: a repository of the same name starts bare.
    again = ecr.create_repository(repositoryName="delete/full")["repository"]
    assert ecr.list_tags_for_resource(resourceArn=again["repositoryArn"])["tags"] == []


# -- PutImageTagMutability and PutImageScanningConfiguration ----------------------------------


def test_put_image_tag_mutability(ecr: Any, iam_server: IamServer) -> None:
    ecr.create_repository(repositoryName="settings/mutability")
    filters = [{"filterType": "WILDCARD", "filter": "release-*"}]
    answer = ecr.put_image_tag_mutability(
        repositoryName="settings/mutability",
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=filters,
    )
    assert answer["registryId"] == iam_server.admin.account_id
    assert answer["repositoryName"] == "settings/mutability"
    assert answer["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"
    assert answer["imageTagMutabilityExclusionFilters"] == filters
    described = ecr.describe_repositories(repositoryNames=["settings/mutability"])
    assert described["repositories"][0]["imageTagMutabilityExclusionFilters"] == filters
    answer = ecr.put_image_tag_mutability(
        repositoryName="settings/mutability", imageTagMutability="IMMUTABLE"
    )
    assert "imageTagMutabilityExclusionFilters" not in answer
    described = ecr.describe_repositories(repositoryNames=["settings/mutability"])
    repository = described["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert "imageTagMutabilityExclusionFilters" not in repository


def test_put_image_tag_mutability_errors(ecr: Any, raw: Any) -> None:
    ecr.create_repository(repositoryName="settings/mutability-errors")
    code, message = aws_error(
        ecr.put_image_tag_mutability,
        repositoryName="settings/nowhere",
        imageTagMutability="MUTABLE",
    )
    assert code == "RepositoryNotFoundException"
    code, message = aws_error(
        ecr.put_image_tag_mutability,
        repositoryName="settings/mutability-errors",
        imageTagMutability="IMMUTABLE",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "x"}],
    )
    assert code == "InvalidParameterException"
    code, message = aws_error(
        raw.put_image_tag_mutability,
        repositoryName="settings/mutability-errors",
        imageTagMutability="FROZEN",
    )
    assert code == "InvalidParameterException"
    assert "imageTagMutability" in message


def test_put_image_scanning_configuration(ecr: Any, iam_server: IamServer) -> None:
    ecr.create_repository(repositoryName="settings/scanning")
    answer = ecr.put_image_scanning_configuration(
        repositoryName="settings/scanning", imageScanningConfiguration={"scanOnPush": True}
    )
    assert answer["registryId"] == iam_server.admin.account_id
    assert answer["repositoryName"] == "settings/scanning"
    assert answer["imageScanningConfiguration"] == {"scanOnPush": True}
    described = ecr.describe_repositories(repositoryNames=["settings/scanning"])
    assert described["repositories"][0]["imageScanningConfiguration"] == {"scanOnPush": True}
    answer = ecr.put_image_scanning_configuration(
        repositoryName="settings/scanning", imageScanningConfiguration={}
    )
    assert answer["imageScanningConfiguration"] == {"scanOnPush": False}
    code, _ = aws_error(
        ecr.put_image_scanning_configuration,
        repositoryName="settings/nowhere",
        imageScanningConfiguration={"scanOnPush": True},
    )
    assert code == "RepositoryNotFoundException"


# -- Resource tags ---------------------------------------------------------------------------


def test_tag_untag_and_list(ecr: Any, iam_server: IamServer) -> None:
    arn = ecr.create_repository(repositoryName="tags/crud", tags=[{"Key": "team", "Value": "a"}])[
        "repository"
    ]["repositoryArn"]
    ecr.tag_resource(
        resourceArn=arn,
        tags=[
            {"Key": "team", "Value": "b"},
            {"Key": "env", "Value": ""},
            {"Key": "Z", "Value": "1"},
        ],
    )
    tags = ecr.list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags == [
        {"Key": "Z", "Value": "1"},
        {"Key": "env", "Value": ""},
        {"Key": "team", "Value": "b"},
    ]
    ecr.untag_resource(resourceArn=arn, tagKeys=["Z", "not-there"])
    tags = ecr.list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags == [{"Key": "env", "Value": ""}, {"Key": "team", "Value": "b"}]


def test_at_most_50_tags_counted_after_the_change(ecr: Any) -> None:
    arn = ecr.create_repository(repositoryName="tags/limit")["repository"]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i:02d}", "Value": "v"} for i in range(49)])
    # Overwriting an existing key does not count; a 50th key fits; a 51st does not.
    ecr.tag_resource(
        resourceArn=arn, tags=[{"Key": "k00", "Value": "w"}, {"Key": "k49", "Value": "v"}]
    )
    code, message = aws_error(
        ecr.tag_resource, resourceArn=arn, tags=[{"Key": "k50", "Value": "v"}]
    )
    assert code == "TooManyTagsException"
    assert message == (
        "The list of tags on the repository is over the limit. The maximum number of tags "
        "that can be applied to a repository is 50."
    )
    tags = ecr.list_tags_for_resource(resourceArn=arn)["tags"]
    assert len(tags) == 50
    assert {"Key": "k00", "Value": "w"} in tags


@pytest.mark.parametrize(
    ("arn", "code"),
    [
        ("arn:aws:ecr:us-east-1:{account}:repository/tags/missing", "RepositoryNotFoundException"),
        ("arn:aws:ecr:eu-west-1:{account}:repository/tags/crud", "InvalidParameterException"),
        ("arn:aws:s3:::bucket", "InvalidParameterException"),
        ("not-an-arn", "InvalidParameterException"),
        ("arn:aws:ecr:us-east-1:{account}:repository/UPPER", "InvalidParameterException"),
    ],
)
def test_tag_operations_refuse_bad_resource_arns(
    ecr: Any, iam_server: IamServer, arn: str, code: str
) -> None:
    arn = arn.format(account=iam_server.admin.account_id)
    tags = [{"Key": "k", "Value": "v"}]
    assert aws_error(ecr.tag_resource, resourceArn=arn, tags=tags)[0] == code
    assert aws_error(ecr.untag_resource, resourceArn=arn, tagKeys=["k"])[0] == code
    assert aws_error(ecr.list_tags_for_resource, resourceArn=arn)[0] == code


def test_tag_operations_refuse_invalid_tags(ecr: Any, raw: Any) -> None:
    arn = ecr.create_repository(repositoryName="tags/invalid")["repository"]["repositoryArn"]
    for tags in (
        [{"Key": "aws:name", "Value": "x"}],
        [{"Key": "AWS:name", "Value": "x"}],
        [{"Key": "", "Value": "x"}],
        [{"Key": "k" * 129, "Value": "x"}],
        [{"Key": "k", "Value": "v" * 257}],
    ):
        assert aws_error(raw.tag_resource, resourceArn=arn, tags=tags)[0] == (
            "InvalidTagParameterException"
        ), tags
    for keys in (["aws:name"], [""]):
        code, _ = aws_error(raw.untag_resource, resourceArn=arn, tagKeys=keys)
        assert code == "InvalidTagParameterException", keys
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == []


# -- Tag conditions in IAM -------------------------------------------------------------------


def test_tag_on_create_needs_tag_resource_too(iam_server: IamServer) -> None:
    data_dir = iam_server.process.data_dir
    account = iam_server.admin.account_id
    user = create_user(
        data_dir,
        account,
        "creator",
        allow(["ecr:CreateRepository", "ecr:DescribeRepositories"]),
    )
    client = ecr_client(iam_server.url, user)
    client.create_repository(repositoryName="conditions/untagged")
    code, message = aws_error(
        client.create_repository,
        repositoryName="conditions/tagged",
        tags=[{"Key": "team", "Value": "a"}],
    )
    assert code == "AccessDeniedException"
    assert message.startswith(
        f"User: arn:aws:iam::{account}:user/creator is not authorized to perform: "
        f"ecr:TagResource on resource: arn:aws:ecr:{REGION}:{account}:repository/conditions/tagged"
    )
    assert aws_error(client.describe_repositories, repositoryNames=["conditions/tagged"])[0] == (
        "RepositoryNotFoundException"
    )


def test_request_tag_and_tag_keys_conditions(iam_server: IamServer, ecr: Any) -> None:
    data_dir = iam_server.process.data_dir
    account = iam_server.admin.account_id
    user = create_user(
        data_dir,
        account,
        "tag-governed",
        allow(
            ["ecr:CreateRepository", "ecr:TagResource"],
            Condition={"StringEquals": {"aws:RequestTag/team": "a"}},
        ),
        allow(
            "ecr:UntagResource",
            Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["temporary"]}},
        ),
    )
    client = ecr_client(iam_server.url, user)
    arn = client.create_repository(
        repositoryName="conditions/team-a", tags=[{"Key": "team", "Value": "a"}]
    )["repository"]["repositoryArn"]
    for tags in ([{"Key": "team", "Value": "b"}], None):
        params: dict[str, Any] = {"repositoryName": "conditions/team-b"}
        if tags:
            params["tags"] = tags
        code, message = aws_error(client.create_repository, **params)
        assert code == "AccessDeniedException"
        assert "ecr:CreateRepository" in message
    client.tag_resource(
        resourceArn=arn, tags=[{"Key": "team", "Value": "a"}, {"Key": "temporary", "Value": "1"}]
    )
    code, _ = aws_error(client.tag_resource, resourceArn=arn, tags=[{"Key": "team", "Value": "b"}])
    assert code == "AccessDeniedException"
    code, message = aws_error(client.untag_resource, resourceArn=arn, tagKeys=["team"])
    assert (code, "ecr:UntagResource" in message) == ("AccessDeniedException", True)
    client.untag_resource(resourceArn=arn, tagKeys=["temporary"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "a"}]


# -- The AWS CLI, as in the README ------------------------------------------------------------


def test_aws_cli_create_and_describe(iam_server: IamServer, tmp_path: Path) -> None:
    created = aws_json(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "create-repository",
        "--repository-name",
        "cli/hello",
        "--image-tag-mutability",
        "IMMUTABLE",
        "--image-scanning-configuration",
        "scanOnPush=true",
    )["repository"]
    assert created["repositoryName"] == "cli/hello"
    assert created["repositoryUri"] == f"{iam_server.process.host}/cli/hello"
    assert created["imageTagMutability"] == "IMMUTABLE"
    described = aws_json(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "describe-repositories",
        "--repository-names",
        "cli/hello",
    )["repositories"]
    assert described == [created]
    everything = aws_json(
        iam_server.url, iam_server.admin, tmp_path, "ecr", "describe-repositories"
    )["repositories"]
    assert "cli/hello" in [r["repositoryName"] for r in everything]
    failed = aws_cli(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "ecr",
        "describe-repositories",
        "--repository-names",
        "cli/missing",
    )
    assert failed.returncode != 0
    assert "RepositoryNotFoundException" in failed.stderr
