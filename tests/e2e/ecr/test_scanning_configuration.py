"""The registry scanning configuration against a real server with IAM on, through boto3:
Put/GetRegistryScanningConfiguration, BatchGetRepositoryScanningConfiguration (with the legacy
PutImageScanningConfiguration flag taking part), their validation errors, and their IAM
resources (the registry for Put/Get, each repository for BatchGet)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.aws import ecr_client
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import allow, aws_error, create_user

pytestmark = pytest.mark.e2e

REGION = "us-east-1"


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def raw(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin, parameter_validation=False)


@pytest.fixture(autouse=True)
def default_configuration(ecr: Any) -> Iterator[None]:
    """Every test starts and ends with the default configuration (the server is shared)."""
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
    yield
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])


@pytest.fixture(scope="module")
def repositories(ecr: Any) -> Iterator[list[str]]:
    names = ["scan/prod-api", "scan/dev-api", "scan/legacy"]
    for name in names:
        ecr.create_repository(repositoryName=name)
    ecr.put_image_scanning_configuration(
        repositoryName="scan/legacy", imageScanningConfiguration={"scanOnPush": True}
    )
    yield names
    for name in names:
        ecr.delete_repository(repositoryName=name)


def wildcard(*filters: str) -> list[dict[str, str]]:
    return [{"filter": f, "filterType": "WILDCARD"} for f in filters]


def by_name(answer: dict[str, Any]) -> dict[str, tuple[str, bool, list[str]]]:
    return {
        c["repositoryName"]: (
            c["scanFrequency"],
            c["scanOnPush"],
            [f["filter"] for f in c["appliedScanFilters"]],
        )
        for c in answer["scanningConfigurations"]
    }


def test_the_default_configuration(ecr: Any, iam_server: IamServer) -> None:
    answer = ecr.get_registry_scanning_configuration()
    assert answer["registryId"] == iam_server.admin.account_id
    assert answer["scanningConfiguration"] == {"scanType": "BASIC", "rules": []}


def test_put_answers_and_get_returns_the_configuration(ecr: Any) -> None:
    rules = [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": wildcard("prod*", "api")}]
    put = ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    assert put["registryScanningConfiguration"] == {"scanType": "BASIC", "rules": rules}
    got = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    assert got == {"scanType": "BASIC", "rules": rules}


def test_put_without_members_is_basic_without_rules(ecr: Any) -> None:
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED", rules=[{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": []}]
    )
    put = ecr.put_registry_scanning_configuration()
    assert put["registryScanningConfiguration"] == {"scanType": "BASIC", "rules": []}


def test_batch_get_under_basic_scanning(
    ecr: Any, iam_server: IamServer, repositories: list[str]
) -> None:
    # Before any rule, only the legacy per-repository flag scans on push.
    answer = ecr.batch_get_repository_scanning_configuration(repositoryNames=repositories)
    assert by_name(answer) == {
        "scan/prod-api": ("MANUAL", False, []),
        "scan/dev-api": ("MANUAL", False, []),
        "scan/legacy": ("SCAN_ON_PUSH", True, []),
    }
    assert answer["failures"] == []
    first = answer["scanningConfigurations"][0]
    assert first["repositoryArn"] == (
        f"arn:aws:ecr:{REGION}:{iam_server.admin.account_id}:repository/scan/prod-api"
    )
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": wildcard("prod", "x*")}],
    )
    answer = ecr.batch_get_repository_scanning_configuration(repositoryNames=repositories)
    # scanOnPush is the repository's own (legacy) flag, scanFrequency what applies: AWS's
    # CLI reference shows scanOnPush false beside SCAN_ON_PUSH, and moto's tests, written
    # against ECR, expect the same.
    assert by_name(answer)["scan/prod-api"] == ("SCAN_ON_PUSH", False, ["prod"])
    assert by_name(answer)["scan/dev-api"] == ("MANUAL", False, [])
    assert by_name(answer)["scan/legacy"] == ("SCAN_ON_PUSH", True, [])


def test_batch_get_under_enhanced_scanning(ecr: Any, repositories: list[str]) -> None:
    ecr.put_registry_scanning_configuration(scanType="ENHANCED")
    answer = ecr.batch_get_repository_scanning_configuration(repositoryNames=repositories)
    assert {v[0] for v in by_name(answer).values()} == {"CONTINUOUS_SCAN"}
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": wildcard("scan/*")},
            {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": wildcard("*prod*")},
        ],
    )
    answer = ecr.batch_get_repository_scanning_configuration(repositoryNames=repositories)
    assert by_name(answer) == {
        "scan/prod-api": ("CONTINUOUS_SCAN", False, ["*prod*"]),  # continuous wins
        "scan/dev-api": ("SCAN_ON_PUSH", False, ["scan/*"]),
        "scan/legacy": ("SCAN_ON_PUSH", True, ["scan/*"]),  # the repository's own flag
    }
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": wildcard("prod")}],
    )
    answer = ecr.batch_get_repository_scanning_configuration(repositoryNames=repositories)
    # Not scanned at all: the legacy flag does not count under enhanced scanning (scanOnPush
    # still reports the flag, as above).
    assert by_name(answer)["scan/legacy"] == ("MANUAL", True, [])


def test_batch_get_reports_missing_repositories_as_failures(
    ecr: Any, repositories: list[str]
) -> None:
    answer = ecr.batch_get_repository_scanning_configuration(
        repositoryNames=["scan/prod-api", "scan/nothing-here"]
    )
    assert list(by_name(answer)) == ["scan/prod-api"]
    assert answer["failures"] == [
        {
            "repositoryName": "scan/nothing-here",
            "failureCode": "REPOSITORY_NOT_FOUND",
            "failureReason": "REPOSITORY_NOT_FOUND",
        }
    ]


@pytest.mark.parametrize(
    ("params", "path"),
    [
        (
            {"rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": wildcard("Prod")}]},
            "rules.1.member.repositoryFilters.1.member.filter",
        ),
        (
            {"rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": []}] * 3},
            "rules",
        ),
        (
            {"rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "a"}]}]},
            "rules.1.member.repositoryFilters.1.member.filterType",
        ),
        ({"scanType": "FULL"}, "scanType"),
    ],
)
def test_put_refuses_what_the_model_refuses(raw: Any, params: dict[str, Any], path: str) -> None:
    code, message = aws_error(raw.put_registry_scanning_configuration, **params)
    assert code == "InvalidParameterException"
    assert message.startswith(f"Invalid parameter at '{path}' failed to satisfy constraint")


@pytest.mark.parametrize(
    ("scan_type", "frequency"), [("BASIC", "CONTINUOUS_SCAN"), ("ENHANCED", "MANUAL")]
)
def test_put_refuses_a_frequency_the_scan_type_does_not_take(
    ecr: Any, scan_type: str, frequency: str
) -> None:
    code, message = aws_error(
        ecr.put_registry_scanning_configuration,
        scanType=scan_type,
        rules=[{"scanFrequency": frequency, "repositoryFilters": wildcard("*")}],
    )
    assert code == "InvalidParameterException"
    assert "'rules.1.member.scanFrequency'" in message
    # Nothing was stored.
    got = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    assert got == {"scanType": "BASIC", "rules": []}


@pytest.mark.parametrize("names", [[], ["a"], [f"r{i:02d}" for i in range(26)]])
def test_batch_get_refuses_bad_names(raw: Any, names: list[str]) -> None:
    code, message = aws_error(
        raw.batch_get_repository_scanning_configuration, repositoryNames=names
    )
    assert code == "InvalidParameterException"
    assert "repositoryNames" in message


def test_iam_resources(iam_server: IamServer, repositories: list[str]) -> None:
    account = iam_server.admin.account_id
    arn = f"arn:aws:ecr:{REGION}:{account}:repository/scan/prod-api"
    user = create_user(
        iam_server.process.data_dir,
        account,
        "scanning-reader",
        allow("ecr:BatchGetRepositoryScanningConfiguration", arn),
        allow("ecr:GetRegistryScanningConfiguration"),
    )
    client = ecr_client(iam_server.url, user)
    client.get_registry_scanning_configuration()
    assert client.batch_get_repository_scanning_configuration(repositoryNames=["scan/prod-api"])
    code, message = aws_error(
        client.batch_get_repository_scanning_configuration,
        repositoryNames=["scan/prod-api", "scan/dev-api"],
    )
    assert code == "AccessDeniedException"
    assert f"on resource: arn:aws:ecr:{REGION}:{account}:repository/scan/dev-api" in message
    code, message = aws_error(client.put_registry_scanning_configuration, scanType="BASIC")
    assert code == "AccessDeniedException"
    assert "ecr:PutRegistryScanningConfiguration on resource: *" in message
