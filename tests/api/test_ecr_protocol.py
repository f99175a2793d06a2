"""The ECR API protocol layer over real HTTP on 127.0.0.1: the dispatcher's pipeline driven by
raw signed requests, then by a real boto3 client.

The operations are small test ones (``tests/unit/protocols/aws/sample_operations.py``); the
authenticator verifies SigV4 for real against one fixed key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import boto3
import botocore.client
import pytest
from aiohttp import StreamReader, web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from botocore.config import Config
from botocore.exceptions import ClientError

from moorage.iam.policy import Policy, parse_policy
from moorage.iam.sigv4 import SignatureError, SignedRequest
from moorage.ports.access import AuthenticationFailed, Authorizer, Principal
from moorage.ports.clock import system_clock
from moorage.protocols.aws.app import ENDPOINT, mount
from moorage.protocols.aws.auth import ApiAuthenticator
from moorage.protocols.aws.operations import OperationTable
from moorage.services.authentication import EmulatorApiAuthenticator
from moorage.services.authorization import PolicyAuthorizer, ResourcePolicies
from tests.unit.protocols.aws import sample_operations
from tests.unit.protocols.aws.fakes import (
    ACCESS_KEY,
    ACCOUNT,
    ALICE,
    OTHER_ACCOUNT,
    REGION,
    SECRET_KEY,
    FakeAuthenticator,
    RecordingAuthorizer,
    signed_headers,
)
from tests.unit.protocols.aws.sample_operations import CREATED_AT, SampleServices

PREFIX = "AmazonEC2ContainerRegistry_V20150921"
JSON_1_1 = "application/x-amz-json-1.1"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def services() -> SampleServices:
    return SampleServices()


@pytest.fixture
def authenticator() -> ApiAuthenticator:
    return FakeAuthenticator()


@pytest.fixture
def authorizer() -> Authorizer:
    return RecordingAuthorizer()


@pytest.fixture
def max_body_size() -> int | None:
    return None


@pytest.fixture
async def server(
    services: SampleServices,
    authenticator: ApiAuthenticator,
    authorizer: Authorizer,
    max_body_size: int | None,
) -> AsyncIterator[TestServer]:
    app = web.Application()
    limit = {} if max_body_size is None else {"max_body_size": max_body_size}
    mount(
        app,
        operations=OperationTable[SampleServices].from_modules(sample_operations),
        authenticator=authenticator,
        authorizer=authorizer,
        services=services,
        region=REGION,
        **limit,
    )
    test_server = TestServer(app, host="127.0.0.1")
    async with test_server:
        yield test_server


@pytest.fixture
async def api(server: TestServer) -> AsyncIterator[Client]:
    async with TestClient(server) as test_client:
        yield test_client


async def call(
    api: Client,
    operation: str | None,
    body: bytes | dict[str, Any] = b"{}",
    *,
    sign: bool = True,
    path: str = "/",
    content_type: str = JSON_1_1,
    headers: dict[str, str] | None = None,
    **signing: str,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST one request; return status, JSON body and headers."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = {"Content-Type": content_type, **(headers or {})}
    if operation is not None:
        sent["X-Amz-Target"] = f"{PREFIX}.{operation}"
    if sign:
        sent = signed_headers(str(api.make_url(path)), data, sent, **signing)
    # A BytesIO: aiohttp warns that large bytes bodies block the loop.
    async with api.post(path, data=io.BytesIO(data), headers=sent) as response:
        assert response.content_type == JSON_1_1
        return response.status, await response.json(content_type=JSON_1_1), dict(response.headers)


# An Authorization header that names our key, with a signature that does not hold: it passes
# the screening before the body, and fails only once the body is read.
_NAMES_OUR_KEY = (
    f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/ecr/aws4_request, "
    f"SignedHeaders=host, Signature={'0' * 64}"
)


def error_of(result: tuple[int, dict[str, Any], dict[str, str]]) -> tuple[int, str]:
    status, body, _ = result
    return status, body["__type"]


# --- the pipeline, step by step -----------------------------------------------------------------


async def test_a_call_succeeds_in_aws_json(api: Client, services: SampleServices) -> None:
    status, body, headers = await call(api, "CreateRepository", {"repositoryName": "web"})
    assert status == 200
    assert body == {
        "repository": {
            "repositoryArn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/web",
            "registryId": ACCOUNT,
            "repositoryName": "web",
            "createdAt": CREATED_AT.timestamp(),
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": False},
        }
    }
    request_id = headers["x-amzn-RequestId"]
    assert uuid.UUID(request_id)
    [ctx] = services.contexts
    assert (ctx.operation, ctx.principal, ctx.registry_id, ctx.region) == (
        "CreateRepository",
        ALICE,
        ACCOUNT,
        REGION,
    )
    assert (ctx.request_id, ctx.source_ip, ctx.secure_transport) == (request_id, "127.0.0.1", False)
    assert ctx.repository == "web"


async def test_the_authenticator_gets_the_request_as_signed(
    api: Client, authenticator: FakeAuthenticator
) -> None:
    body = json.dumps({"repositoryName": "web"}).encode()
    status, _, _ = await call(api, "CreateRepository", body, path="/?b=2&a=x%20y")
    assert status == 200
    [(signed, source_ip)] = authenticator.calls
    assert (signed.method, signed.path, signed.query) == ("POST", "/", "b=2&a=x%20y")
    assert signed.body_sha256 == hashlib.sha256(body).hexdigest()
    assert signed.headers["x-amz-target"] == f"{PREFIX}.CreateRepository"
    assert source_ip == "127.0.0.1"


async def test_json_1_0_is_accepted_too(api: Client) -> None:
    status, _, _ = await call(
        api,
        "CreateRepository",
        {"repositoryName": "web"},
        content_type="application/x-amz-json-1.0",
    )
    assert status == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_get_an_aws_error_not_html(api: Client, method: str) -> None:
    async with api.request(method, "/") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert response.headers["x-amzn-RequestId"]
        assert response.content_type == JSON_1_1
        body = await response.json(content_type=JSON_1_1)
    assert body["__type"] == "UnknownOperationException"


@pytest.mark.parametrize(
    "target",
    [None, "CreateRepository", "DynamoDB_20120810.CreateRepository", f"{PREFIX}.CreateBucket"],
)
async def test_targets_that_name_no_ecr_operation(api: Client, target: str | None) -> None:
    headers = {} if target is None else {"X-Amz-Target": target}
    status, body, response_headers = await call(api, None, headers=headers)
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert PREFIX in body["message"]
    assert response_headers["x-amzn-RequestId"]


async def test_a_content_type_that_is_not_aws_json(api: Client) -> None:
    result = await call(api, "CreateRepository", content_type="application/json")
    assert error_of(result) == (400, "UnknownOperationException")


@pytest.mark.parametrize("max_body_size", [64])
async def test_a_body_over_the_cap_is_refused(
    api: Client, authenticator: FakeAuthenticator
) -> None:
    big = json.dumps({"repositoryName": "w" * 100}).encode()
    assert error_of(await call(api, "CreateRepository", big)) == (
        413,
        "RequestEntityTooLargeException",
    )

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 10

    # Names a key of ours (with a signature still to check), so it passes the screening
    # before the body: the limit is met while reading.
    headers = {
        "Content-Type": JSON_1_1,
        "X-Amz-Target": f"{PREFIX}.CreateRepository",
        "Authorization": _NAMES_OUR_KEY,
    }
    async with api.post("/", data=chunks(), headers=headers) as response:
        assert response.status == 413
        assert (await response.json(content_type=JSON_1_1))["__type"] == (
            "RequestEntityTooLargeException"
        )
    assert authenticator.calls == []


async def test_control_operations_take_small_bodies_only(api: Client) -> None:
    # 2 MiB is under the 32 MiB a layer part may take, but no other operation needs it.
    big = json.dumps({"repositoryName": "web", "pad": " " * (2 * 1024 * 1024)}).encode()
    assert error_of(await call(api, "CreateRepository", big)) == (
        413,
        "RequestEntityTooLargeException",
    )


async def test_a_body_is_not_read_for_a_request_no_key_signed(
    server: TestServer, authenticator: FakeAuthenticator
) -> None:
    # The body is declared but never sent: the answer comes from the headers alone.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
        + f"X-Amz-Target: {PREFIX}.UploadLayerPart\r\n".encode()
        + b"Content-Length: 30000000\r\n\r\n{"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"400"
    assert authenticator.screened == 1
    assert authenticator.calls == []


async def test_unverified_bodies_share_a_budget(
    api: Client, server: TestServer, services: SampleServices
) -> None:
    dispatcher_budget = server.app[ENDPOINT].unverified_budget
    dispatcher_budget.in_use = dispatcher_budget.capacity - 10  # others hold all but 10 bytes
    try:
        result = await call(api, "CreateRepository", {"repositoryName": "web"})
        assert error_of(result) == (400, "ThrottlingException")
    finally:
        dispatcher_budget.in_use -= dispatcher_budget.capacity - 10
    assert dispatcher_budget.in_use == 0
    status, _, _ = await call(api, "CreateRepository", {"repositoryName": "web"})
    assert status == 200
    assert dispatcher_budget.in_use == 0  # returned after the signature is verified


async def test_authentication_comes_before_parsing(api: Client, services: SampleServices) -> None:
    result = await call(api, "CreateRepository", b"{not json", sign=False)
    assert error_of(result) == (400, "MissingAuthenticationTokenException")
    assert result[1]["message"] == "Missing Authentication Token"
    assert services.calls == []


async def test_unknown_keys_and_bad_signatures(api: Client) -> None:
    body = {"repositoryName": "web"}
    unknown = await call(api, "CreateRepository", body, access_key="AKIAUNKNOWN000000000")
    assert error_of(unknown) == (400, "UnrecognizedClientException")
    assert unknown[1]["message"] == "The security token included in the request is invalid."
    wrong_secret = await call(api, "CreateRepository", body, secret_key="not-the-secret")
    assert error_of(wrong_secret) == (400, "InvalidSignatureException")
    garbled = await call(
        api, "CreateRepository", body, sign=False, headers={"Authorization": "AWS4-HMAC-SHA256 x"}
    )
    assert error_of(garbled) == (400, "IncompleteSignatureException")


@pytest.mark.parametrize(
    "failure",
    [
        AuthenticationFailed("UnrecognizedClientException", "The security token is invalid."),
        SignatureError("IncompleteSignatureException", "Signature must be 64 hex characters."),
    ],
)
async def test_authenticators_may_refuse_with_the_ports_exception(
    services: SampleServices, authorizer: RecordingAuthorizer, failure: Exception
) -> None:
    class Refuses:
        async def authenticate(self, request: SignedRequest, source_ip: str | None) -> Principal:
            raise failure

    app = web.Application()
    mount(
        app,
        operations=OperationTable[SampleServices].from_modules(sample_operations),
        authenticator=Refuses(),
        authorizer=authorizer,
        services=services,
        region=REGION,
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        status, body, _ = await call(client, "CreateRepository", {"repositoryName": "web"})
    assert (status, body["__type"], body["message"]) == (
        400,
        getattr(failure, "code", None),
        getattr(failure, "message", None),
    )


async def test_a_body_changed_after_signing(api: Client) -> None:
    url = str(api.make_url("/"))
    headers = signed_headers(
        url,
        b'{"repositoryName":"web"}',
        {"Content-Type": JSON_1_1, "X-Amz-Target": f"{PREFIX}.CreateRepository"},
    )
    async with api.post("/", data=b'{"repositoryName":"evil"}', headers=headers) as response:
        body = await response.json(content_type=JSON_1_1)
    assert (response.status, body["__type"]) == (400, "InvalidSignatureException")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1]",
        b'"web"',
        b"\xff\xfe",
        b'{"a": NaN}',
        # Deeper than json's decoder recurses: this was a 500 ServerException.
        b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
async def test_bodies_that_are_not_json_objects(api: Client, body: bytes) -> None:
    assert error_of(await call(api, "CreateRepository", body)) == (400, "SerializationException")


async def test_an_empty_body_is_an_empty_input(api: Client) -> None:
    status, body, _ = await call(api, "CreateRepository", b"")
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert body["message"].endswith("'Member must not be null'")


async def test_an_operation_not_built_yet_is_unsupported_never_a_fake_success(
    api: Client,
) -> None:
    # The choice: 400 UnsupportedOperationException, after authentication and before
    # validation, with a message that names the operation.
    status, body, _ = await call(api, "PutImage", {"repositoryName": "web"})
    assert (status, body) == (
        400,
        {
            "__type": "UnsupportedOperationException",
            "message": "The operation PutImage is not supported by this registry yet.",
        },
    )


async def test_invalid_input_reaches_neither_authorizer_nor_handler(
    api: Client, services: SampleServices, authorizer: RecordingAuthorizer
) -> None:
    status, body, _ = await call(api, "CreateRepository", {"repositoryName": "Web"})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert body["message"].startswith("Invalid parameter at 'repositoryName'")
    assert services.calls == []
    assert authorizer.requests == []


# --- authorization ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "body", "asked"),
    [
        ("CreateRepository", {"repositoryName": "web"}, [("ecr:CreateRepository", ACCOUNT, "web")]),
        (
            "DescribeImages",
            {"repositoryName": "web", "registryId": OTHER_ACCOUNT},
            [("ecr:DescribeImages", OTHER_ACCOUNT, "web")],
        ),
        (
            "TagResource",
            {
                "resourceArn": f"arn:aws:ecr:{REGION}:{OTHER_ACCOUNT}:repository/team/web",
                "tags": [],
            },
            [("ecr:TagResource", OTHER_ACCOUNT, "team/web")],
        ),
        (
            "DescribeRepositories",
            {"repositoryNames": ["aa", "bb"]},
            [
                ("ecr:DescribeRepositories", ACCOUNT, "aa"),
                ("ecr:DescribeRepositories", ACCOUNT, "bb"),
            ],
        ),
        ("DescribeRepositories", {}, [("ecr:DescribeRepositories", ACCOUNT, None)]),
        ("GetAuthorizationToken", {}, [("ecr:GetAuthorizationToken", ACCOUNT, None)]),
        (
            "ListImageReferrers",
            {"repositoryName": "web", "subjectId": {"imageDigest": "sha256:" + "0" * 64}},
            [("ecr:BatchGetImage", ACCOUNT, "web")],
        ),
    ],
)
async def test_the_operations_action_is_authorized_on_its_resource(
    api: Client,
    authorizer: RecordingAuthorizer,
    operation: str,
    body: dict[str, Any],
    asked: list[tuple[str, str, str | None]],
) -> None:
    await call(api, operation, body)
    assert authorizer.asked == asked


async def test_a_malformed_resource_arn(api: Client, services: SampleServices) -> None:
    result = await call(api, "TagResource", {"resourceArn": "arn:aws:ecr:web", "tags": []})
    assert error_of(result) == (400, "InvalidParameterException")
    assert services.calls == []


async def test_a_denied_call_never_reaches_its_handler(
    api: Client, services: SampleServices, authorizer: RecordingAuthorizer
) -> None:
    authorizer.deny.add(("ecr:DeleteRepository", "web"))
    status, body, _ = await call(api, "DeleteRepository", {"repositoryName": "web"})
    assert (status, body) == (
        400,
        {
            "__type": "AccessDeniedException",
            "message": f"User: {ALICE.arn} is not authorized to perform: ecr:DeleteRepository "
            f"on resource: arn:aws:ecr:{REGION}:{ACCOUNT}:repository/web",
        },
    )
    assert services.calls == []


async def test_handlers_authorize_further_actions(
    api: Client, services: SampleServices, authorizer: RecordingAuthorizer
) -> None:
    body = {"repositoryName": "web", "tags": [{"Key": "team", "Value": "a"}]}
    assert (await call(api, "CreateRepository", body))[0] == 200
    assert authorizer.asked == [
        ("ecr:CreateRepository", ACCOUNT, "web"),
        ("ecr:TagResource", ACCOUNT, "web"),
    ]
    assert authorizer.requests[1].request_tags == {"team": "a"}
    assert authorizer.requests[1].tag_keys == ("team",)

    authorizer.deny.add(("ecr:TagResource", "api"))
    result = await call(api, "CreateRepository", {**body, "repositoryName": "api"})
    assert error_of(result) == (400, "AccessDeniedException")
    assert services.repositories == {"web"}


# --- failures inside operations -----------------------------------------------------------------


async def test_domain_exceptions_become_their_aws_errors(api: Client) -> None:
    status, body, _ = await call(api, "DeleteRepository", {"repositoryName": "web"})
    assert (status, body) == (
        400,
        {
            "__type": "RepositoryNotFoundException",
            "message": "The repository with name 'web' does not exist in the registry with id "
            f"'{ACCOUNT}'",
        },
    )


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("ListImages", {"repositoryName": "web"}),
        (
            "ListImageReferrers",
            {"repositoryName": "web", "subjectId": {"imageDigest": "sha256:" + "0" * 64}},
        ),
        ("GetLifecyclePolicy", {"repositoryName": "web"}),
        ("BatchDeleteImage", {"repositoryName": "web", "imageIds": [{"imageTag": "v1"}]}),
    ],
)
async def test_bugs_are_a_logged_500_with_the_request_id(
    api: Client, caplog: pytest.LogCaptureFixture, operation: str, body: dict[str, Any]
) -> None:
    with caplog.at_level(logging.ERROR, logger="moorage.ecr_api"):
        status, answer, headers = await call(api, operation, body)
    request_id = headers["x-amzn-RequestId"]
    assert (status, answer["__type"]) == (500, "ServerException")
    assert request_id in answer["message"]
    assert len(answer["message"]) < 100  # no exception text for the client
    [record] = caplog.records
    assert request_id in record.getMessage()
    assert record.exc_info is not None
    logged = caplog.text
    assert "Signature=" not in logged
    assert SECRET_KEY not in logged


class _DroppedBody:
    """A request body whose client goes away halfway."""

    async def iter_any(self) -> AsyncIterator[bytes]:
        yield b'{"repositoryName":'
        raise ConnectionResetError("peer gone")


async def test_a_client_that_leaves_mid_body(
    services: SampleServices, authenticator: FakeAuthenticator, authorizer: RecordingAuthorizer
) -> None:
    dispatcher = mount(
        web.Application(),
        operations=OperationTable[SampleServices].from_modules(sample_operations),
        authenticator=authenticator,
        authorizer=authorizer,
        services=services,
        region=REGION,
    )
    request = make_mocked_request(
        "POST",
        "/",
        headers={
            "Content-Type": JSON_1_1,
            "X-Amz-Target": f"{PREFIX}.CreateRepository",
            "Authorization": _NAMES_OUR_KEY,
        },
        payload=cast(StreamReader, _DroppedBody()),
    )
    response = await dispatcher.handle(request)
    assert response.status == 400
    assert isinstance(response.body, bytes)
    assert json.loads(response.body)["__type"] == "RequestAbortedException"
    assert authenticator.calls == []


# --- a real boto3 client ------------------------------------------------------------------------


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's AWS configuration and proxies out of the test."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def ecr_client(
    server: TestServer,
    *,
    secret_key: str = SECRET_KEY,
    access_key: str = ACCESS_KEY,
    validate: bool = True,
) -> botocore.client.BaseClient:
    return boto3.session.Session().client(
        "ecr",
        endpoint_url=str(server.make_url("")).rstrip("/"),
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(parameter_validation=validate, retries={"total_max_attempts": 1}),
    )


async def aws(client: botocore.client.BaseClient, method: str, **params: Any) -> dict[str, Any]:
    # boto3 blocks; the server shares this event loop, so the client runs in a thread.
    result: dict[str, Any] = await asyncio.to_thread(getattr(client, method), **params)
    return result


async def aws_error(client: botocore.client.BaseClient, method: str, **params: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        await aws(client, method, **params)
    return caught.value


@pytest.mark.usefixtures("no_aws_config")
async def test_boto3_gets_parsed_outputs(server: TestServer, services: SampleServices) -> None:
    client = ecr_client(server)
    created = await aws(client, "create_repository", repositoryName="team/web")
    repository = created["repository"]
    assert repository["repositoryArn"] == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team/web"
    assert isinstance(repository["createdAt"], datetime)
    assert repository["createdAt"] == CREATED_AT
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert uuid.UUID(created["ResponseMetadata"]["RequestId"])

    described = await aws(client, "describe_images", repositoryName="team/web")
    [detail] = described["imageDetails"]
    assert detail["imagePushedAt"] == CREATED_AT
    assert detail["imageSizeInBytes"] == 5 * 2**30
    assert detail["imageScanFindingsSummary"]["findingSeverityCounts"] == {"CRITICAL": 1, "LOW": 7}

    listed = await aws(client, "describe_repositories")
    assert [r["repositoryName"] for r in listed["repositories"]] == ["team/web"]


@pytest.mark.usefixtures("no_aws_config")
async def test_boto3_uploads_a_layer_part_as_bytes(
    server: TestServer, services: SampleServices
) -> None:
    client = ecr_client(server)
    part = bytes(range(256)) * 4096  # 1 MiB
    uploaded = await aws(
        client,
        "upload_layer_part",
        repositoryName="web",
        uploadId="0f0e0d0c-0b0a-0908-0706-050403020100",
        partFirstByte=0,
        partLastByte=len(part) - 1,
        layerPartBlob=part,
    )
    assert uploaded["lastByteReceived"] == len(part) - 1
    [(_, params)] = services.calls
    assert params["layer_part_blob"] == part

    error = await aws_error(
        client,
        "upload_layer_part",
        repositoryName="web",
        uploadId="0f0e0d0c-0b0a-0908-0706-050403020100",
        partFirstByte=5,
        partLastByte=6,
        layerPartBlob=b"x",
    )
    assert error.response["Error"]["Code"] == "InvalidLayerPartException"
    # botocore reads a modelled error's members into the response.
    assert error.response["lastValidByteReceived"] == 0
    assert error.response["uploadId"] == "0f0e0d0c-0b0a-0908-0706-050403020100"


@pytest.mark.usefixtures("no_aws_config")
async def test_boto3_sees_aws_error_codes(
    server: TestServer, authorizer: RecordingAuthorizer
) -> None:
    client = ecr_client(server)
    error = await aws_error(client, "delete_repository", repositoryName="web")
    assert error.response["Error"]["Code"] == "RepositoryNotFoundException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    error = await aws_error(client, "put_image", repositoryName="web", imageManifest="{}")
    assert error.response["Error"]["Code"] == "UnsupportedOperationException"

    authorizer.deny.add(("ecr:DescribeImages", "secret"))
    error = await aws_error(client, "describe_images", repositoryName="secret")
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert "ecr:DescribeImages on resource" in error.response["Error"]["Message"]

    error = await aws_error(client, "list_images", repositoryName="web")
    assert error.response["Error"]["Code"] == "ServerException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500


@pytest.mark.usefixtures("no_aws_config")
async def test_boto3_past_its_own_validation_meets_ours(server: TestServer) -> None:
    client = ecr_client(server, validate=False)
    error = await aws_error(client, "create_repository", repositoryName="Not/Valid")
    assert error.response["Error"]["Code"] == "InvalidParameterException"
    assert error.response["Error"]["Message"].startswith(
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        "'must satisfy regular expression '"
    )
    error = await aws_error(
        client, "batch_delete_image", repositoryName="web", imageIds=[{"imageTag": "x" * 301}]
    )
    assert error.response["Error"]["Message"] == (
        "Invalid parameter at 'imageIds.1.member.imageTag' failed to satisfy constraint: "
        "'Member must have length less than or equal to 300'"
    )
    error = await aws_error(client, "describe_images", repositoryName="web", maxResults="ten")
    assert error.response["Error"]["Code"] == "SerializationException"


class _ReadOnlyPolicies:
    """Alice may describe anything in her account, and nothing else."""

    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        text = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ecr:Describe*", "Resource": "*"}],
            }
        )
        return [parse_policy(text, kind="identity")]

    async def resource_policies(self, registry_id: str, repository: str | None) -> ResourcePolicies:
        return ResourcePolicies()


@pytest.mark.usefixtures("no_aws_config")
@pytest.mark.parametrize(
    "authorizer", [PolicyAuthorizer(_ReadOnlyPolicies(), system_clock, REGION)]
)
async def test_boto3_against_the_policy_engine(server: TestServer) -> None:
    client = ecr_client(server)
    assert (await aws(client, "describe_repositories"))["repositories"] == []
    error = await aws_error(client, "create_repository", repositoryName="web")
    assert error.response["Error"] == {
        "Code": "AccessDeniedException",
        "Message": f"User: {ALICE.arn} is not authorized to perform: ecr:CreateRepository on "
        f"resource: arn:aws:ecr:{REGION}:{ACCOUNT}:repository/web because no identity-based "
        "policy allows the ecr:CreateRepository action",
    }


@pytest.mark.usefixtures("no_aws_config")
@pytest.mark.parametrize("authenticator", [EmulatorApiAuthenticator(OTHER_ACCOUNT)])
async def test_boto3_against_the_emulators_authenticator(
    server: TestServer, services: SampleServices
) -> None:
    client = ecr_client(server, access_key="AKIAANYTHINGGOES0000", secret_key="anything")
    created = await aws(client, "create_repository", repositoryName="web")
    assert created["repository"]["registryId"] == OTHER_ACCOUNT
    [ctx] = services.contexts
    assert ctx.principal.arn == f"arn:aws:iam::{OTHER_ACCOUNT}:root"
    assert ctx.principal.access_key_id == "AKIAANYTHINGGOES0000"


@pytest.mark.usefixtures("no_aws_config")
async def test_boto3_with_bad_credentials(server: TestServer) -> None:
    error = await aws_error(ecr_client(server, secret_key="wrong"), "describe_repositories")
    assert error.response["Error"]["Code"] == "InvalidSignatureException"
    unknown = ecr_client(server, access_key="AKIANOBODY0000000000")
    error = await aws_error(unknown, "describe_repositories")
    assert error.response["Error"]["Code"] == "UnrecognizedClientException"


async def test_layer_parts_fit_under_the_default_cap(api: Client) -> None:
    # The model's largest part (20 MiB) in base64, inside a JSON body, is under 32 MiB.
    part = base64.b64encode(b"\0" * 20 * 1024 * 1024).decode()
    status, body, _ = await call(
        api,
        "UploadLayerPart",
        {
            "repositoryName": "web",
            "uploadId": "0f0e0d0c-0b0a-0908-0706-050403020100",
            "partFirstByte": 0,
            "partLastByte": 20 * 1024 * 1024 - 1,
            "layerPartBlob": part,
        },
    )
    assert status == 200
    assert body["lastByteReceived"] == 20 * 1024 * 1024 - 1
