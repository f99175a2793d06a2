"""SigV4 through a real server: the answers AWS gives to requests it cannot accept.

Requests are signed by botocore exactly as boto3 signs them, then spoiled in one way each:
the wrong secret, a body changed after signing, a date outside the 15-minute window, a key
nobody issued, no signature at all.
"""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from tests.e2e.aws import REGION, Credentials, ecr_client
from tests.e2e.conftest import IamServer

pytestmark = pytest.mark.e2e

TARGET = "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"


def signed(
    server: IamServer,
    credentials: Credentials,
    body: bytes = b"{}",
    *,
    at: dt.datetime | None = None,
    region: str = REGION,
) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=f"{server.url}/",
        data=body,
        headers={"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"},
    )
    signer = SigV4Auth(
        BotoCredentials(credentials.access_key_id, credentials.secret_access_key), "ecr", region
    )
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            signer.add_auth(request)
    return request


def send(request: AWSRequest, body: bytes | None = None) -> tuple[int, dict[str, str]]:
    response = requests.post(
        request.url,
        data=request.body if body is None else body,
        headers=dict(request.headers.items()),
        timeout=10,
    )
    return response.status_code, json.loads(response.content)


def test_a_correctly_signed_request_is_answered(iam_server: IamServer) -> None:
    status, body = send(signed(iam_server, iam_server.admin))
    assert status == 200
    assert "repositories" in body


def test_the_wrong_secret(iam_server: IamServer) -> None:
    wrong = Credentials(iam_server.admin.access_key_id, "x" * 40, iam_server.admin.account_id)
    with pytest.raises(ClientError) as caught:
        ecr_client(iam_server.url, wrong).describe_repositories()
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert error["Message"].startswith("The request signature we calculated does not match")


def test_a_body_modified_after_signing(iam_server: IamServer) -> None:
    request = signed(iam_server, iam_server.admin, b'{"maxResults": 10}')
    status, body = send(request, b'{"maxResults": 11}')
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"


def test_a_stale_date(iam_server: IamServer) -> None:
    stale = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=16)
    status, body = send(signed(iam_server, iam_server.admin, at=stale))
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"
    assert body["message"].startswith("Signature expired:")
    recent = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=10)
    assert send(signed(iam_server, iam_server.admin, at=recent))[0] == 200


def test_an_unknown_key(iam_server: IamServer) -> None:
    stranger = Credentials("AKIAUNKNOWNKEY000000", "y" * 40, "999999999999")
    with pytest.raises(ClientError) as caught:
        ecr_client(iam_server.url, stranger).describe_repositories()
    error = caught.value.response["Error"]
    assert error["Code"] == "UnrecognizedClientException"
    assert error["Message"] == "The security token included in the request is invalid."


def test_another_region(iam_server: IamServer) -> None:
    status, body = send(signed(iam_server, iam_server.admin, region="eu-west-1"))
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"


def test_no_signature_at_all(iam_server: IamServer) -> None:
    response = requests.post(
        f"{iam_server.url}/",
        data=b"{}",
        headers={"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "MissingAuthenticationTokenException"
