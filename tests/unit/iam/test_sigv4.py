"""SigV4 verification against signatures made by botocore, the signer the AWS CLI uses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from moorage.iam.sigv4 import (
    Authorization,
    SignatureError,
    SignedRequest,
    VerifiedScope,
    canonical_query,
    canonical_uri,
    parse_authorization,
    parse_presigned,
    verify,
    verify_presigned,
)

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = datetime(2026, 11, 26, 12, 36, 0, tzinfo=UTC)
ENDPOINT = "https://api.ecr.us-east-1.amazonaws.com"


def sign(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    token: str | None = None,
    service: str = "ecr",
    region: str = "us-east-1",
    at: datetime = SIGNED_AT,
) -> SignedRequest:
    """Sign with botocore at ``at`` and return what a server would receive."""
    request = AWSRequest(
        method=method, url=url, data=body, headers=dict(headers or {}), params=params
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(Credentials(AKID, SECRET, token), service, region).add_auth(request)
    wire = urlsplit(request.prepare().url)
    received = dict(request.headers.items())
    received.setdefault("Host", wire.netloc)
    return SignedRequest(
        method=method,
        path=wire.path,
        query=wire.query,
        headers=received,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )


def check(
    request: SignedRequest,
    *,
    secret: str = SECRET,
    now: datetime = SIGNED_AT,
    expected_service: str = "ecr",
) -> VerifiedScope:
    authorization = parse_authorization(request.headers["authorization"])
    return verify(request, authorization, secret, now, expected_service=expected_service)


def with_headers(request: SignedRequest, **changes: str | None) -> SignedRequest:
    headers = {k: v for k, v in request.headers.items()}
    for name, value in changes.items():
        key = name.replace("_", "-").lower()
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    return SignedRequest(request.method, request.path, request.query, headers, request.body_sha256)


def ecr_call(target: str = "DescribeRepositories", token: str | None = None) -> SignedRequest:
    """A JSON 1.1 POST shaped like the AWS CLI's ECR calls."""
    return sign(
        "POST",
        ENDPOINT + "/",
        body=json.dumps({"repositoryNames": ["team/app"]}).encode(),
        headers={
            "X-Amz-Target": f"AmazonEC2ContainerRegistry_V20150921.{target}",
            "Content-Type": "application/x-amz-json-1.1",
            "User-Agent": "aws-cli/2.17.0 Python/3.11",
        },
        token=token,
    )


def assert_rejected(
    code: str,
    message_part: str,
    request: SignedRequest,
    *,
    secret: str = SECRET,
    now: datetime = SIGNED_AT,
) -> str:
    """Assert ``check`` refuses ``request`` with ``code``; return the message for the client."""
    with pytest.raises(SignatureError) as caught:
        check(request, secret=secret, now=now)
    assert caught.value.code == code
    assert message_part in caught.value.message
    assert SECRET not in str(caught.value)
    return caught.value.message


# --- accepted --------------------------------------------------------------------------------


def test_accepts_an_ecr_json_post_like_the_cli() -> None:
    scope = check(ecr_call())
    assert scope == VerifiedScope(AKID, "us-east-1", "ecr", date(2026, 11, 26))
    assert scope.session_token is None


def test_accepts_a_session_token_and_returns_it() -> None:
    request = ecr_call(token="FQoGZXIvYXdzEXAMPLETOKEN//+=")
    assert (
        "x-amz-security-token"
        in parse_authorization(request.headers["authorization"]).signed_headers
    )
    assert check(request).session_token == "FQoGZXIvYXdzEXAMPLETOKEN//+="


def test_accepts_a_get_whose_query_needs_encoding() -> None:
    params = {
        "filter": "a b/c~d+e",
        "name": "ünïcødé ✓",
        "empty": "",
        "Zed": "1",
        "reserved": "!*'();:@&=+$,/?#[]",
    }
    request = sign("GET", ENDPOINT + "/v2/_catalog", params=params)
    assert "+" in request.query  # botocore's wire form encodes spaces as '+', like a form
    assert check(request).access_key_id == AKID


def test_accepts_a_query_with_repeated_keys_and_percent_twenty_spaces() -> None:
    request = sign("GET", ENDPOINT + "/list?b=2&a=z%20y&a=x&c")
    assert check(request).service == "ecr"


@pytest.mark.parametrize(
    "path",
    [
        "/v2/team%2Fapp/blobs/sha256:abc",  # an encoded slash is signed as %252F
        "/v2/a%20b/manifests/v1.0~rc",
        "/v2/%C3%BCml%C3%A4ut/tags/list",
        "/v2//double//slashes/",
        "/v2/./dots/../x",
    ],
)
def test_accepts_paths_that_need_double_encoding_or_normalising(path: str) -> None:
    assert check(sign("GET", ENDPOINT + path)).region == "us-east-1"


def test_accepts_an_unsigned_extra_header() -> None:
    request = with_headers(ecr_call(), X_Forwarded_For="10.0.0.1", X_Amz_Unsigned_Extra="1")
    check(request)


def test_accepts_header_names_in_any_case_and_values_with_extra_spaces() -> None:
    request = sign("GET", ENDPOINT + "/", headers={"My-Header": "  a   b  c "})
    headers = {k.upper(): v for k, v in request.headers.items()}
    headers["MY-HEADER"] = "a b    c"
    check(SignedRequest(request.method, request.path, request.query, headers, request.body_sha256))


def test_accepts_unsigned_payload_and_a_matching_content_hash_header() -> None:
    body = b'{"repositoryName": "app"}'
    unsigned = sign(
        "POST", ENDPOINT + "/", body=body, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    check(unsigned)
    declared = sign(
        "POST",
        ENDPOINT + "/",
        body=body,
        headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
    )
    check(declared)


def test_accepts_an_http_date_header_instead_of_x_amz_date() -> None:
    # botocore signs with the Date header (and no X-Amz-Date) when the request carries one.
    request = sign("GET", ENDPOINT + "/", headers={"Date": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert "x-amz-date" not in request.headers
    assert request.headers["date"].startswith("Thu, 26 Nov 2026 12:36:00 ")
    assert check(request).date == date(2026, 11, 26)


def test_accepts_within_skew_on_either_side() -> None:
    request = ecr_call()
    check(request, now=SIGNED_AT + timedelta(minutes=15))
    check(request, now=SIGNED_AT - timedelta(minutes=15))


def test_aws_published_get_vanilla_vector() -> None:
    # aws-sig-v4-test-suite/get-vanilla: GET / on example.amazonaws.com, service "service".
    request = SignedRequest(
        method="GET",
        path="/",
        query="",
        headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        body_sha256=hashlib.sha256(b"").hexdigest(),
    )
    authorization = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    now = datetime(2015, 8, 30, 12, 40, tzinfo=UTC)
    scope = verify(request, authorization, SECRET, now, expected_service="service")
    assert scope == VerifiedScope(AKID, "us-east-1", "service", date(2015, 8, 30))


# --- rejected --------------------------------------------------------------------------------


def test_rejects_a_tampered_body() -> None:
    request = ecr_call()
    tampered = SignedRequest(
        request.method,
        request.path,
        request.query,
        request.headers,
        hashlib.sha256(b'{"repositoryNames": ["other"]}').hexdigest(),
    )
    assert_rejected("InvalidSignatureException", "does not match the signature", tampered)


def test_rejects_a_body_that_does_not_match_the_declared_hash() -> None:
    request = sign(
        "POST",
        ENDPOINT + "/",
        body=b"{}",
        headers={"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()},
    )
    tampered = SignedRequest(
        request.method,
        request.path,
        request.query,
        request.headers,
        hashlib.sha256(b"[]").hexdigest(),
    )
    assert_rejected("InvalidSignatureException", "'x-amz-content-sha256'", tampered)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository"),
        ("Content-Type", "application/json"),
        ("Host", "evil.example.com"),
    ],
)
def test_rejects_a_tampered_signed_header(header: str, value: str) -> None:
    request = with_headers(ecr_call(), **{header.replace("-", "_"): value})
    assert_rejected("InvalidSignatureException", "does not match the signature", request)


def test_rejects_a_tampered_path_query_or_method() -> None:
    request = sign("GET", ENDPOINT + "/v2/app/tags/list", params={"n": "10"})
    for tampered in (
        SignedRequest(
            "GET", "/v2/other/tags/list", request.query, request.headers, request.body_sha256
        ),
        SignedRequest("GET", request.path, "n=11", request.headers, request.body_sha256),
        SignedRequest("DELETE", request.path, request.query, request.headers, request.body_sha256),
    ):
        assert_rejected("InvalidSignatureException", "does not match the signature", tampered)


def test_rejects_a_wrong_secret() -> None:
    assert_rejected(
        "InvalidSignatureException",
        "does not match the signature",
        ecr_call(),
        secret="not-the-secret",
    )


def test_rejects_a_signature_for_another_service() -> None:
    request = sign("POST", ENDPOINT + "/", body=b"{}", service="s3")
    assert_rejected("InvalidSignatureException", "correct service: 'ecr'", request)


def test_rejects_a_credential_scope_date_that_is_not_the_request_day() -> None:
    request = ecr_call()
    auth = request.headers["authorization"].replace("/20261126/", "/20261125/")
    message = assert_rejected(
        "InvalidSignatureException",
        "Date in Credential scope",
        with_headers(request, Authorization=auth),
    )
    assert "'20261125' != '20261126'" in message


def test_rejects_clock_skew_with_aws_message() -> None:
    request = ecr_call()
    message = assert_rejected(
        "InvalidSignatureException",
        "Signature expired",
        request,
        now=SIGNED_AT + timedelta(minutes=15, seconds=1),
    )
    assert message == (
        "Signature expired: 20261126T123600Z is now earlier than 20261126T123601Z "
        "(20261126T125101Z - 15 min.)"
    )
    future = assert_rejected(
        "InvalidSignatureException",
        "Signature not yet current",
        request,
        now=SIGNED_AT - timedelta(minutes=16),
    )
    assert future == (
        "Signature not yet current: 20261126T123600Z is still later than 20261126T123500Z "
        "(20261126T122000Z + 15 min.)"
    )


def test_rejects_a_missing_date() -> None:
    request = with_headers(ecr_call(), X_Amz_Date=None)
    auth = parse_authorization(request.headers["authorization"])
    with pytest.raises(SignatureError) as caught:
        verify(request, auth, SECRET, SIGNED_AT)
    assert caught.value.code == "IncompleteSignatureException"
    assert "'X-Amz-Date' or a 'Date'" in caught.value.message


def test_rejects_an_unsigned_security_token() -> None:
    request = with_headers(ecr_call(), X_Amz_Security_Token="injected")
    assert_rejected("IncompleteSignatureException", "X-Amz-Security-Token", request)


def test_rejects_when_host_is_not_signed() -> None:
    request = sign("GET", ENDPOINT + "/")
    auth = parse_authorization(request.headers["authorization"])
    no_host = Authorization(
        auth.access_key_id,
        auth.scope_date,
        auth.region,
        auth.service,
        tuple(h for h in auth.signed_headers if h != "host"),
        auth.signature,
    )
    with pytest.raises(SignatureError) as caught:
        verify(request, no_host, SECRET, SIGNED_AT)
    assert caught.value.code == "IncompleteSignatureException"


def test_rejects_a_signed_header_missing_from_the_request() -> None:
    request = with_headers(ecr_call(), X_Amz_Target=None)
    assert_rejected("IncompleteSignatureException", "'x-amz-target' is missing", request)


def test_naive_now_is_a_programming_error() -> None:
    request = ecr_call()
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(
            request,
            parse_authorization(request.headers["authorization"]),
            SECRET,
            datetime(2026, 1, 1),
        )


# --- parse_authorization ---------------------------------------------------------------------

GOOD_CREDENTIAL = "Credential=AKID/20261126/us-east-1/ecr/aws4_request"
GOOD_SIGNATURE = "Signature=" + "a" * 64
REST = f"SignedHeaders=host, {GOOD_SIGNATURE}"


def test_parses_the_authorization_header_with_loose_spacing() -> None:
    auth = parse_authorization(
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL},SignedHeaders=X-Amz-Date;host ,  {GOOD_SIGNATURE}"
    )
    assert auth == Authorization(
        "AKID", "20261126", "us-east-1", "ecr", ("host", "x-amz-date"), "a" * 64
    )
    assert "a" * 64 not in repr(auth)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "AWS4-HMAC-SHA256",
        "Bearer abc",
        f"AWS4-HMAC-SHA512 {GOOD_CREDENTIAL}, SignedHeaders=host, {GOOD_SIGNATURE}",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, {GOOD_SIGNATURE}",
        f"AWS4-HMAC-SHA256 SignedHeaders=host, {GOOD_SIGNATURE}",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=xyz",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature={'A' * 64}",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL} SignedHeaders=host {GOOD_SIGNATURE}",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, {GOOD_CREDENTIAL}, {REST}",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, {GOOD_SIGNATURE}, Extra=1",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host;;x-amz-date, {GOOD_SIGNATURE}",
        f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host;HOST, {GOOD_SIGNATURE}",
        f"AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ecr, {REST}",
        f"AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ecr/aws4, {REST}",
        f"AWS4-HMAC-SHA256 Credential=AKID/2026-11-26/us-east-1/ecr/aws4_request, {REST}",
        f"AWS4-HMAC-SHA256 Credential=/20261126/us-east-1/ecr/aws4_request, {REST}",
    ],
)
def test_rejects_malformed_authorization_headers(header: str) -> None:
    with pytest.raises(SignatureError) as caught:
        parse_authorization(header)
    assert caught.value.code == "IncompleteSignatureException"


# --- canonical forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/a%2Fb", "/a%252Fb"),
        ("/a//b/./c/../d/", "/a/b/d/"),
        ("/..", "/"),
        ("/~user/x-y_z.1", "/~user/x-y_z.1"),
    ],
)
def test_canonical_uri(raw: str, canonical: str) -> None:
    assert canonical_uri(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=10&a=1", "a=1&a=10&a=2"),
        ("flag&x=a+b", "flag=&x=a%20b"),
        ("x=%7E%2F%2B&y=~", "x=~%2F%2B&y=~"),
        ("q=%C3%BC", "q=%C3%BC"),
        ("a=1&&b=2", "a=1&b=2"),
    ],
)
def test_canonical_query(raw: str, canonical: str) -> None:
    assert canonical_query(raw) == canonical


# --- presigned URLs --------------------------------------------------------------------------


def presign(
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    token: str | None = None,
    expires: int = 300,
    service: str = "ecr",
) -> SignedRequest:
    request = AWSRequest(method="GET", url=url, params=params)
    signer = SigV4QueryAuth(Credentials(AKID, SECRET, token), service, "us-east-1", expires)
    with mock.patch(
        "botocore.auth.get_current_datetime", return_value=SIGNED_AT.replace(tzinfo=None)
    ):
        signer.add_auth(request)
    wire = urlsplit(request.prepare().url)
    return SignedRequest(
        method="GET",
        path=wire.path,
        query=wire.query,
        headers={"Host": wire.netloc, "User-Agent": "curl/8"},
        body_sha256=hashlib.sha256(b"").hexdigest(),
    )


def check_presigned(
    request: SignedRequest, *, now: datetime = SIGNED_AT, secret: str = SECRET
) -> VerifiedScope:
    presigned = parse_presigned(request.query)
    assert presigned is not None
    return verify_presigned(request, presigned, secret, now)


def test_presigned_url_is_accepted_until_it_expires() -> None:
    request = presign(ENDPOINT + "/v2/team%2Fapp/blobs/sha256:ab", params={"q": "a b+~"})
    assert check_presigned(request).access_key_id == AKID
    assert check_presigned(request, now=SIGNED_AT + timedelta(seconds=300)).region == "us-east-1"
    with pytest.raises(SignatureError) as caught:
        check_presigned(request, now=SIGNED_AT + timedelta(seconds=301))
    assert caught.value.code == "InvalidSignatureException"
    assert caught.value.message.startswith("Request has expired")
    with pytest.raises(SignatureError) as caught:
        check_presigned(request, now=SIGNED_AT - timedelta(minutes=16))
    assert caught.value.message.startswith("Signature not yet current")


def test_presigned_url_carries_its_session_token() -> None:
    request = presign(ENDPOINT + "/", token="TOKEN/with+chars=")
    assert check_presigned(request).session_token == "TOKEN/with+chars="


def test_presigned_url_rejects_tampering_and_a_wrong_secret() -> None:
    request = presign(ENDPOINT + "/v2/app/blobs/x", params={"n": "1"})
    tampered = SignedRequest(
        "GET",
        request.path,
        request.query.replace("n=1", "n=2"),
        request.headers,
        request.body_sha256,
    )
    longer = SignedRequest(
        "GET",
        request.path,
        request.query.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"),
        request.headers,
        request.body_sha256,
    )
    for bad, secret in ((tampered, SECRET), (longer, SECRET), (request, "wrong")):
        with pytest.raises(SignatureError) as caught:
            check_presigned(bad, secret=secret)
        assert caught.value.code == "InvalidSignatureException"
        assert "does not match the signature" in caught.value.message


def test_a_query_without_sigv4_parameters_is_not_presigned() -> None:
    assert parse_presigned("") is None
    assert parse_presigned("n=10&last=tag") is None


@pytest.mark.parametrize(
    "drop_or_change",
    [
        ("X-Amz-Signature", None),
        ("X-Amz-Credential", None),
        ("X-Amz-Date", None),
        ("X-Amz-Expires", None),
        ("X-Amz-SignedHeaders", None),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
        ("X-Amz-Expires", "604801"),
        ("X-Amz-Expires", "0"),
        ("X-Amz-Expires", "-5"),
        ("X-Amz-Date", "2026-11-26T12:36:00Z"),
    ],
)
def test_malformed_presigned_parameters(drop_or_change: tuple[str, str | None]) -> None:
    name, value = drop_or_change
    pairs = [p.partition("=") for p in presign(ENDPOINT + "/").query.split("&")]
    kept = [
        f"{k}={value if k == name else v}" for k, _, v in pairs if k != name or value is not None
    ]
    with pytest.raises(SignatureError) as caught:
        parse_presigned("&".join(kept))
    assert caught.value.code == "IncompleteSignatureException"


def test_repeated_presigned_parameters_are_malformed() -> None:
    query = presign(ENDPOINT + "/").query
    with pytest.raises(SignatureError, match="repeated"):
        parse_presigned(query + "&X-Amz-Date=20261126T123600Z")
