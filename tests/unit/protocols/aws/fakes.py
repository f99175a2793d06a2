"""Test doubles for the ECR API layer: a SigV4 authenticator on fixed keys, a recording
authorizer, and a helper that signs requests as botocore does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from moorage.domain.errors import AccessDenied
from moorage.iam.actions import user_arn
from moorage.iam.sigv4 import SignatureError, SignedRequest, parse_authorization, verify
from moorage.ports.access import AccessRequest, Principal
from moorage.protocols.aws.errors import (
    from_signature_error,
    missing_authentication_token,
    unrecognized_client,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"
ACCESS_KEY = "AKIAMOORAGETEST00001"
SECRET_KEY = "moorage/secret+key/for/tests/only0000000"
ALICE = Principal(
    registry_id=ACCOUNT,
    arn=user_arn(ACCOUNT, "alice"),
    user_id="AIDAMOORAGEALICE",
    username="alice",
    access_key_id=ACCESS_KEY,
)


@dataclass
class FakeAuthenticator:
    """Verifies SigV4 for real against fixed keys; records what each call was given."""

    keys: Mapping[str, tuple[str, Principal]] = field(
        default_factory=lambda: {ACCESS_KEY: (SECRET_KEY, ALICE)}
    )
    calls: list[tuple[SignedRequest, str | None]] = field(default_factory=list)
    screened: int = 0

    async def screen(self, request: SignedRequest, source_ip: str | None) -> None:
        """Refuses, from the headers alone, what names no key of ours."""
        self.screened += 1
        header = request.headers.get("authorization")
        if header is None:
            raise missing_authentication_token()
        try:
            if parse_authorization(header).access_key_id not in self.keys:
                raise unrecognized_client()
        except SignatureError as error:
            raise from_signature_error(error) from None

    async def authenticate_screened(
        self, request: SignedRequest, screened: object, source_ip: str | None
    ) -> Principal:
        return await self.authenticate(request, source_ip)

    async def authenticate(self, request: SignedRequest, source_ip: str | None) -> Principal:
        self.calls.append((request, source_ip))
        header = request.headers.get("authorization")
        if header is None:
            raise missing_authentication_token()
        try:
            authorization = parse_authorization(header)
            entry = self.keys.get(authorization.access_key_id)
            if entry is None:
                raise unrecognized_client()
            secret, principal = entry
            verify(request, authorization, secret, datetime.now(UTC))
        except SignatureError as error:
            raise from_signature_error(error) from None
        return principal


@dataclass
class RecordingAuthorizer:
    """Allows everything but the (action, repository) pairs in ``deny``; records each question."""

    deny: set[tuple[str, str | None]] = field(default_factory=set)
    requests: list[AccessRequest] = field(default_factory=list)

    async def authorize(self, request: AccessRequest) -> None:
        self.requests.append(request)
        if (str(request.action), request.repository) in self.deny:
            raise AccessDenied("denied by the test")

    @property
    def asked(self) -> list[tuple[str, str, str | None]]:
        return [(str(r.action), r.registry_id, r.repository) for r in self.requests]


def signed_headers(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = REGION,
) -> dict[str, str]:
    """``headers`` plus the SigV4 headers botocore adds for a POST of ``body`` to ``url``."""
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials(access_key, secret_key), "ecr", region).add_auth(request)
    return dict(request.headers.items())
