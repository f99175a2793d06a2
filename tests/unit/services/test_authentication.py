"""Authenticators: SigV4 with stored access keys (requests signed by botocore, as the AWS CLI
signs them), the emulator's, and /v2/ logins with login tokens."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from moorage.domain.errors import AccessDenied, TokenExpired, Unauthenticated
from moorage.domain.identities import NewAccessKey, User
from moorage.iam.login_tokens import LoginTokens
from moorage.iam.secrets import KeyRing, MasterKey, SecretUndecryptable
from moorage.iam.sigv4 import SignedRequest
from moorage.ports.access import AuthenticationFailed, Credentials, Principal
from moorage.services.authentication import (
    ApiKeyAuthenticator,
    EmulatorApiAuthenticator,
    RegistryAuthenticator,
)
from moorage.services.identities import IdentityService
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store

ACCOUNT = "123456789012"
REGION = "us-east-1"
SIGNED_AT = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
ENDPOINT = "http://127.0.0.1:5000/"
TARGET = "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"
BODY = b'{"maxResults": 10}'
KEYS = KeyRing.derive(MasterKey(bytes(range(32))))
INVALID_TOKEN = "The security token included in the request is invalid."


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def metadata(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(SIGNED_AT)


@pytest.fixture
def identities(metadata: SqlMetadataStore, clock: Clock) -> IdentityService:
    return IdentityService(metadata, KEYS.access_key_secrets, clock)


@pytest.fixture
async def alice(identities: IdentityService) -> User:
    await identities.create_account(ACCOUNT, "team")
    return await identities.create_user(ACCOUNT, "alice")


@pytest.fixture
async def key(identities: IdentityService, alice: User) -> NewAccessKey:
    return await identities.create_access_key(ACCOUNT, alice.name)


@pytest.fixture
def api(metadata: SqlMetadataStore, clock: Clock) -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(
        metadata, KEYS.access_key_secrets, clock, regions=frozenset({REGION})
    )


def received(request: AWSRequest, body: bytes) -> SignedRequest:
    """What the server receives of a request botocore prepared."""
    wire = urlsplit(request.prepare().url)
    headers = dict(request.headers.items())
    headers.setdefault("Host", wire.netloc)
    return SignedRequest(
        method=request.method,
        path=wire.path,
        query=wire.query,
        headers=headers,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )


def signed(
    access_key_id: str,
    secret: str,
    *,
    body: bytes = BODY,
    region: str = REGION,
    token: str | None = None,
    at: datetime = SIGNED_AT,
) -> SignedRequest:
    """A DescribeRepositories call signed by botocore at ``at``."""
    request = AWSRequest(
        method="POST",
        url=ENDPOINT,
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET},
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(BotoCredentials(access_key_id, secret, token), "ecr", region).add_auth(request)
    return received(request, body)


def presigned(access_key_id: str, secret: str, *, expires: int = 60) -> SignedRequest:
    request = AWSRequest(method="GET", url=ENDPOINT, params={"Action": "Ping"})
    with mock.patch(
        "botocore.auth.get_current_datetime", return_value=SIGNED_AT.replace(tzinfo=None)
    ):
        SigV4QueryAuth(BotoCredentials(access_key_id, secret), "ecr", REGION, expires).add_auth(
            request
        )
    return received(request, b"")


def with_headers(request: SignedRequest, changes: Mapping[str, str | None]) -> SignedRequest:
    headers = dict(request.headers)
    for name, value in changes.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return replace(request, headers=headers)


async def failure(api: ApiKeyAuthenticator, request: SignedRequest) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as raised:
        await api.authenticate(request, "192.0.2.7")
    return raised.value


# -- ECR API: SigV4 with stored keys ----------------------------------------------------


async def test_a_request_signed_with_an_active_key_is_its_user(
    api: ApiKeyAuthenticator, alice: User, key: NewAccessKey
) -> None:
    principal = await api.authenticate(signed(key.access_key_id, key.secret_access_key), None)
    assert principal == Principal(
        registry_id=ACCOUNT,
        arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        user_id=alice.user_id,
        username="alice",
        access_key_id=key.access_key_id,
    )


async def test_a_wrong_secret_is_an_invalid_signature(
    api: ApiKeyAuthenticator, key: NewAccessKey, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = key.secret_access_key[:-1] + ("A" if key.secret_access_key[-1] != "A" else "B")
    with caplog.at_level(logging.DEBUG):
        error = await failure(api, signed(key.access_key_id, wrong))
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith("The request signature we calculated does not match")
    assert key.secret_access_key not in error.message
    assert key.secret_access_key not in caplog.text
    assert wrong not in caplog.text
    assert "192.0.2.7" in caplog.text  # the failure is logged, with who tried


async def test_an_unknown_key_is_unrecognized(api: ApiKeyAuthenticator, key: NewAccessKey) -> None:
    error = await failure(api, signed("AKIAUNKNOWNUNKNOWN00", key.secret_access_key))
    assert (error.code, error.message) == ("UnrecognizedClientException", INVALID_TOKEN)


async def test_an_inactive_key_is_unrecognized_until_reactivated(
    api: ApiKeyAuthenticator, identities: IdentityService, key: NewAccessKey
) -> None:
    request = signed(key.access_key_id, key.secret_access_key)
    await identities.deactivate_access_key(ACCOUNT, "alice", key.access_key_id)
    error = await failure(api, request)
    assert (error.code, error.message) == ("UnrecognizedClientException", INVALID_TOKEN)
    await identities.activate_access_key(ACCOUNT, "alice", key.access_key_id)
    assert (await api.authenticate(request, None)).username == "alice"


async def test_a_deleted_user_keys_are_unrecognized(
    api: ApiKeyAuthenticator, identities: IdentityService, key: NewAccessKey
) -> None:
    await identities.delete_user(ACCOUNT, "alice")
    error = await failure(api, signed(key.access_key_id, key.secret_access_key))
    assert error.code == "UnrecognizedClientException"


async def test_a_modified_body_breaks_the_signature(
    api: ApiKeyAuthenticator, key: NewAccessKey
) -> None:
    request = signed(key.access_key_id, key.secret_access_key)
    tampered = replace(request, body_sha256=hashlib.sha256(b'{"maxResults": 11}').hexdigest())
    error = await failure(api, tampered)
    assert error.code == "InvalidSignatureException"


async def test_a_stale_date_is_an_expired_signature(
    api: ApiKeyAuthenticator, clock: Clock, key: NewAccessKey
) -> None:
    request = signed(key.access_key_id, key.secret_access_key)
    clock.now = SIGNED_AT + timedelta(minutes=16)
    error = await failure(api, request)
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith("Signature expired: 20261127T100000Z is now earlier than")
    clock.now = SIGNED_AT + timedelta(minutes=14)
    assert (await api.authenticate(request, None)).username == "alice"


async def test_another_region_is_refused(api: ApiKeyAuthenticator, key: NewAccessKey) -> None:
    error = await failure(api, signed(key.access_key_id, key.secret_access_key, region="eu-west-1"))
    assert error.code == "InvalidSignatureException"
    assert "valid region" in error.message


async def test_any_region_when_none_is_configured(
    metadata: SqlMetadataStore, clock: Clock, key: NewAccessKey
) -> None:
    anywhere = ApiKeyAuthenticator(metadata, KEYS.access_key_secrets, clock, regions=None)
    request = signed(key.access_key_id, key.secret_access_key, region="eu-west-1")
    assert (await anywhere.authenticate(request, None)).username == "alice"


async def test_session_tokens_are_unrecognized(api: ApiKeyAuthenticator, key: NewAccessKey) -> None:
    request = signed(key.access_key_id, key.secret_access_key, token="FwoGZXIvYXdzEXAMPLE")
    error = await failure(api, request)
    assert (error.code, error.message) == ("UnrecognizedClientException", INVALID_TOKEN)


async def test_no_authorization_is_a_missing_token(
    api: ApiKeyAuthenticator, key: NewAccessKey
) -> None:
    request = with_headers(
        signed(key.access_key_id, key.secret_access_key), {"authorization": None}
    )
    error = await failure(api, request)
    assert (error.code, error.message) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


async def test_a_malformed_authorization_is_an_incomplete_signature(
    api: ApiKeyAuthenticator, key: NewAccessKey
) -> None:
    request = signed(key.access_key_id, key.secret_access_key)
    for header in ("AWS4-HMAC-SHA256 Credential=x", "Basic QVdTOnNlY3JldA==", "garbage"):
        error = await failure(api, with_headers(request, {"authorization": header}))
        assert error.code == "IncompleteSignatureException"


async def test_presigned_requests(
    api: ApiKeyAuthenticator, clock: Clock, key: NewAccessKey
) -> None:
    request = presigned(key.access_key_id, key.secret_access_key, expires=60)
    assert (await api.authenticate(request, None)).access_key_id == key.access_key_id
    clock.now = SIGNED_AT + timedelta(seconds=61)
    error = await failure(api, request)
    assert error.code == "InvalidSignatureException"
    assert "expired" in error.message
    unknown = presigned("AKIAUNKNOWNUNKNOWN00", key.secret_access_key)
    clock.now = SIGNED_AT
    assert (await failure(api, unknown)).code == "UnrecognizedClientException"


async def test_a_secret_under_another_master_key_is_a_server_fault(
    metadata: SqlMetadataStore, clock: Clock, key: NewAccessKey
) -> None:
    other = KeyRing.derive(MasterKey(bytes(32))).access_key_secrets
    misconfigured = ApiKeyAuthenticator(metadata, other, clock, regions=frozenset({REGION}))
    with pytest.raises(SecretUndecryptable, match="another master key") as raised:
        await misconfigured.authenticate(signed(key.access_key_id, key.secret_access_key), None)
    assert key.secret_access_key not in str(raised.value)


async def test_the_emulator_accepts_anything_as_its_account_root() -> None:
    emulator = EmulatorApiAuthenticator(ACCOUNT)
    request = signed("AKIAANYTHINGATALL000", "any secret at all")
    principal = await emulator.authenticate(request, None)
    assert principal == Principal(
        registry_id=ACCOUNT,
        arn=f"arn:aws:iam::{ACCOUNT}:root",
        access_key_id="AKIAANYTHINGATALL000",
    )
    for header in (None, "garbage"):
        unsigned = with_headers(request, {"authorization": header})
        assert (await emulator.authenticate(unsigned, None)).arn == f"arn:aws:iam::{ACCOUNT}:root"
    from_query = await emulator.authenticate(presigned("AKIAFROMTHEQUERY0000", "x"), None)
    assert from_query.access_key_id == "AKIAFROMTHEQUERY0000"


# -- /v2/: login tokens -----------------------------------------------------------------


@pytest.fixture
def tokens() -> LoginTokens:
    return LoginTokens(KEYS.registry_login)


@pytest.fixture
def registry(
    metadata: SqlMetadataStore, tokens: LoginTokens, clock: Clock
) -> RegistryAuthenticator:
    return RegistryAuthenticator(metadata, tokens, clock)


async def login(
    api: ApiKeyAuthenticator, tokens: LoginTokens, key: NewAccessKey
) -> tuple[str, datetime]:
    """What GetAuthorizationToken does: authenticate the API call, issue a password."""
    principal = await api.authenticate(signed(key.access_key_id, key.secret_access_key), None)
    return tokens.issue(principal, SIGNED_AT)


def basic(password: str, username: str = "AWS") -> Credentials:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return Credentials(authorization=f"Basic {token}")


async def test_basic_and_bearer_logins_are_the_user(
    registry: RegistryAuthenticator,
    api: ApiKeyAuthenticator,
    tokens: LoginTokens,
    key: NewAccessKey,
    alice: User,
) -> None:
    password, _ = await login(api, tokens, key)
    expected = Principal(ACCOUNT, alice.arn, alice.user_id, "alice", key.access_key_id)
    assert await registry.authenticate(basic(password)) == expected
    assert await registry.authenticate(Credentials(authorization=f"Bearer {password}")) == expected
    # The scheme is case-insensitive (RFC 9110), and spaces around the value do not matter.
    encoded = base64.b64encode(f"AWS:{password}".encode()).decode()
    assert await registry.authenticate(Credentials(authorization=f"basic  {encoded} ")) == expected


async def test_an_expired_token_is_denied_with_ecrs_text(
    registry: RegistryAuthenticator,
    api: ApiKeyAuthenticator,
    tokens: LoginTokens,
    key: NewAccessKey,
    clock: Clock,
) -> None:
    password, expires_at = await login(api, tokens, key)
    clock.now = expires_at
    with pytest.raises(TokenExpired) as raised:
        await registry.authenticate(basic(password))
    assert isinstance(raised.value, AccessDenied)
    assert raised.value.message == (
        "Your authorization token has expired. Reauthenticate and try again."
    )


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic",
        "Basic !!!notbase64",
        "Bearer",
        "Negotiate abc",
        "AWS4-HMAC-SHA256 Credential=AKIA/20261127/us-east-1/ecr/aws4_request",
        "Basic " + base64.b64encode(b"AWS").decode(),
        "Basic " + base64.b64encode(b"AWS:").decode(),
        "Basic " + base64.b64encode(b"AWS:not-a-token").decode(),
        "Bearer not-a-token",
    ],
)
async def test_missing_or_bad_credentials_are_unauthenticated(
    registry: RegistryAuthenticator, authorization: str | None
) -> None:
    with pytest.raises(Unauthenticated):
        await registry.authenticate(Credentials(authorization=authorization))


async def test_the_user_name_must_be_aws(
    registry: RegistryAuthenticator,
    api: ApiKeyAuthenticator,
    tokens: LoginTokens,
    key: NewAccessKey,
) -> None:
    password, _ = await login(api, tokens, key)
    with pytest.raises(Unauthenticated):
        await registry.authenticate(basic(password, username="alice"))


async def test_a_tampered_token_is_unauthenticated(
    registry: RegistryAuthenticator,
    api: ApiKeyAuthenticator,
    tokens: LoginTokens,
    key: NewAccessKey,
) -> None:
    password, _ = await login(api, tokens, key)
    flipped = password[:10] + ("A" if password[10] != "A" else "B") + password[11:]
    with pytest.raises(Unauthenticated) as raised:
        await registry.authenticate(basic(flipped))
    assert not isinstance(raised.value, AccessDenied)


async def test_a_token_dies_with_its_key_or_user(
    registry: RegistryAuthenticator,
    api: ApiKeyAuthenticator,
    tokens: LoginTokens,
    identities: IdentityService,
    key: NewAccessKey,
) -> None:
    password, _ = await login(api, tokens, key)
    await identities.deactivate_access_key(ACCOUNT, "alice", key.access_key_id)
    with pytest.raises(Unauthenticated):
        await registry.authenticate(basic(password))
    await identities.activate_access_key(ACCOUNT, "alice", key.access_key_id)
    assert (await registry.authenticate(basic(password))).username == "alice"
    await identities.delete_access_key(ACCOUNT, "alice", key.access_key_id)
    with pytest.raises(Unauthenticated):
        await registry.authenticate(basic(password))


async def test_a_token_of_a_recreated_user_is_refused(
    registry: RegistryAuthenticator,
    api: ApiKeyAuthenticator,
    tokens: LoginTokens,
    identities: IdentityService,
    key: NewAccessKey,
) -> None:
    password, _ = await login(api, tokens, key)
    await identities.delete_user(ACCOUNT, "alice")
    await identities.create_user(ACCOUNT, "alice")  # same name, new user id
    with pytest.raises(Unauthenticated):
        await registry.authenticate(basic(password))


async def test_an_emulator_token_is_refused_outside_the_emulator(
    registry: RegistryAuthenticator, tokens: LoginTokens
) -> None:
    root = Principal(registry_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root")
    password, _ = tokens.issue(root, SIGNED_AT)
    with pytest.raises(Unauthenticated):
        await registry.authenticate(basic(password))
