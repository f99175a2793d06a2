"""Secrets Manager on the registry's endpoint: boto3 and ``aws secretsmanager --endpoint-url``
against a real server with IAM, values encrypted at rest and never logged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.aws import REGION, Credentials, aws_cli
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import allow, aws_error, create_user

pytestmark = pytest.mark.e2e

VALUE = "correct horse battery staple 7d1e"  # looked for in the log and the database


def client(server: IamServer, credentials: Credentials, region: str = REGION) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def sm(iam_server: IamServer) -> Iterator[Any]:
    secrets = client(iam_server, iam_server.admin)
    yield secrets
    for listed in secrets.list_secrets(IncludePlannedDeletion=True)["SecretList"]:
        secrets.delete_secret(SecretId=listed["ARN"], ForceDeleteWithoutRecovery=True)


def test_create_get_put_and_versions(sm: Any, iam_server: IamServer) -> None:
    created = sm.create_secret(
        Name="ecr-pullthroughcache/hub",
        SecretString=json.dumps({"username": "u", "accessToken": VALUE}),
        Tags=[{"Key": "team", "Value": "web"}],
    )
    arn = created["ARN"]
    assert arn.startswith(
        f"arn:aws:secretsmanager:{REGION}:{iam_server.admin.account_id}:"
        "secret:ecr-pullthroughcache/hub-"
    )
    assert len(arn.rsplit("-", 1)[1]) == 6
    first = created["VersionId"]
    for secret_id in ("ecr-pullthroughcache/hub", arn, arn[:-7]):  # name, ARN, partial ARN
        got = sm.get_secret_value(SecretId=secret_id)
        assert json.loads(got["SecretString"])["accessToken"] == VALUE
        assert got["VersionStages"] == ["AWSCURRENT"]
    second = sm.put_secret_value(SecretId=arn, SecretString="rotated")
    assert second["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "rotated"
    previous = sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert previous["VersionId"] == first
    described = sm.describe_secret(SecretId=arn)
    assert described["VersionIdsToStages"] == {
        first: ["AWSPREVIOUS"],
        second["VersionId"]: ["AWSCURRENT"],
    }
    assert described["Tags"] == [{"Key": "team", "Value": "web"}]
    # The same token again with the same value is the same call; with another, refused.
    token = "a" * 32
    again = sm.put_secret_value(SecretId=arn, SecretString="third", ClientRequestToken=token)
    assert (
        sm.put_secret_value(SecretId=arn, SecretString="third", ClientRequestToken=token)[
            "VersionId"
        ]
        == again["VersionId"]
    )
    code, _ = aws_error(
        sm.put_secret_value, SecretId=arn, SecretString="other", ClientRequestToken=token
    )
    assert code == "ResourceExistsException"
    binary = sm.create_secret(Name="binary", SecretBinary=b"\x00\x01secret")
    assert sm.get_secret_value(SecretId=binary["ARN"])["SecretBinary"] == b"\x00\x01secret"


def test_errors_as_secrets_manager_words_them(sm: Any) -> None:
    sm.create_secret(Name="twice", SecretString="x")
    assert aws_error(sm.create_secret, Name="twice", SecretString="y") == (
        "ResourceExistsException",
        "The operation failed because the secret twice already exists.",
    )
    assert aws_error(sm.get_secret_value, SecretId="absent") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
    code, _ = aws_error(sm.create_secret, Name="both", SecretString="x", SecretBinary=b"y")
    assert code == "InvalidParameterException"
    sm.create_secret(Name="empty")
    assert aws_error(sm.get_secret_value, SecretId="empty") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
    )
    code, message = aws_error(sm.delete_secret, SecretId="twice", RecoveryWindowInDays=3)
    assert (code, message) == (
        "InvalidParameterException",
        "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
    )
    # An operation Secrets Manager has and this server does not build: a clear error.
    code, _ = aws_error(sm.rotate_secret, SecretId="twice")
    assert code == "UnsupportedOperationException"


def test_deletion_with_a_recovery_window_and_restore(sm: Any) -> None:
    sm.create_secret(Name="doomed", SecretString="x")
    deleted = sm.delete_secret(SecretId="doomed", RecoveryWindowInDays=7)
    assert deleted["Name"] == "doomed"
    names = [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert "doomed" not in names
    planned = sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    (listed,) = [s for s in planned if s["Name"] == "doomed"]
    assert listed["DeletedDate"] == deleted["DeletionDate"]
    code, message = aws_error(sm.get_secret_value, SecretId="doomed")
    assert code == "InvalidRequestException"
    assert "marked for deletion" in message
    code, _ = aws_error(sm.create_secret, Name="doomed", SecretString="y")
    assert code == "InvalidRequestException"
    sm.restore_secret(SecretId="doomed")
    assert sm.get_secret_value(SecretId="doomed")["SecretString"] == "x"
    sm.delete_secret(SecretId="doomed", ForceDeleteWithoutRecovery=True)
    assert aws_error(sm.describe_secret, SecretId="doomed")[0] == "ResourceNotFoundException"


def test_list_filters_and_pages(sm: Any) -> None:
    for name in ("app/one", "app/two", "db/main"):
        sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "kind", "Value": name[:2]}])
    by_name = sm.list_secrets(Filters=[{"Key": "name", "Values": ["app/"]}])["SecretList"]
    assert sorted(s["Name"] for s in by_name) == ["app/one", "app/two"]
    by_tag = sm.list_secrets(Filters=[{"Key": "tag-value", "Values": ["db"]}])["SecretList"]
    assert [s["Name"] for s in by_tag] == ["db/main"]
    first = sm.list_secrets(MaxResults=2, SortBy="name", SortOrder="asc")
    assert [s["Name"] for s in first["SecretList"]] == ["app/one", "app/two"]
    rest = sm.list_secrets(
        MaxResults=2, SortBy="name", SortOrder="asc", NextToken=first["NextToken"]
    )
    assert [s["Name"] for s in rest["SecretList"]] == ["db/main"]
    assert "NextToken" not in rest


def test_iam_governs_every_operation(sm: Any, iam_server: IamServer) -> None:
    account = iam_server.admin.account_id
    sm.create_secret(Name="team/a", SecretString="a-value")
    sm.create_secret(Name="team/b", SecretString="b-value")
    reader = create_user(
        iam_server.process.data_dir,
        account,
        "secret-reader",
        allow(
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{REGION}:{account}:secret:team/a-*",
        ),
    )
    limited = client(iam_server, reader)
    assert limited.get_secret_value(SecretId="team/a")["SecretString"] == "a-value"
    code, message = aws_error(limited.get_secret_value, SecretId="team/b")
    assert code == "AccessDeniedException"
    assert "secretsmanager:GetSecretValue" in message
    assert aws_error(limited.put_secret_value, SecretId="team/a", SecretString="x")[0] == (
        "AccessDeniedException"
    )
    assert aws_error(limited.list_secrets)[0] == "AccessDeniedException"
    # Without permission, a name that has no secret is refused, not reported missing.
    assert aws_error(limited.get_secret_value, SecretId="nothing")[0] == "AccessDeniedException"


def test_the_aws_cli_and_no_value_at_rest_or_in_the_log(
    sm: Any, iam_server: IamServer, tmp_path: Path
) -> None:
    result = aws_cli(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "secretsmanager",
        "create-secret",
        "--name",
        "from-cli",
        "--secret-string",
        VALUE,
        "--endpoint-url",
        iam_server.url,
    )
    assert result.returncode == 0, result.stderr
    result = aws_cli(
        iam_server.url,
        iam_server.admin,
        tmp_path,
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "from-cli",
        "--endpoint-url",
        iam_server.url,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["SecretString"] == VALUE
    assert VALUE not in iam_server.process.log()
    database = (iam_server.process.data_dir / "moorage.db").read_bytes()
    assert VALUE.encode() not in database
