"""Who is calling: authenticators for the ECR API (SigV4) and for ``/v2/`` (login tokens).

ECR API (``POST /`` with ``X-Amz-Target``), one of:

- :class:`ApiKeyAuthenticator`: the request is signed with SigV4 (Authorization header or
  presigned query) by an active access key of an IAM user. Pipeline: parse the signature
  (``IncompleteSignatureException``) -> region -> session token (we have no STS) -> look up
  the key (unknown or inactive: ``UnrecognizedClientException``) -> decrypt its secret ->
  verify the signature, date and payload hash (``InvalidSignatureException``). Failures
  raise ``AuthenticationFailed(code, message)`` with AWS's codes and texts.
- :class:`EmulatorApiAuthenticator` (emulator mode): any request, signed or not, with any
  key, is the emulator account's root (``arn:aws:iam::<account>:root``), as moto and
  LocalStack accept any credentials. Root, not a user: as in AWS, an account's root may do
  everything in its own account (the authorizer gives it an allow-all identity policy), and
  policies that name the account apply to it.

``/v2/`` (the ``Authenticator`` port):

- :class:`RegistryAuthenticator`: ``Basic base64("AWS:" + password)`` or ``Bearer
  password``, where the password is a login token (``iam/login_tokens.py``); its user and
  access key must still exist and the key be active. No credentials, another scheme, a user
  name other than ``AWS`` or a token that does not verify: Unauthenticated (401 with the
  challenge). An expired token: TokenExpired (403 ``DENIED`` with ECR's text).

Emulator mode's ``/v2/`` door is ``services/access.py``'s ``EmulatorAuthenticator``; its
principal is the one :class:`EmulatorApiAuthenticator` returns, so both protocols see one
caller.

Secrets (secret access keys, tokens) never appear in messages or logs; access key ids are
identifiers, not secrets, and are logged with failures (as CloudTrail records them).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import replace
from datetime import timedelta
from typing import NamedTuple

from moorage.domain.errors import TokenExpired, Unauthenticated
from moorage.domain.identities import AccessKey, AccessKeyStatus, User
from moorage.iam import sigv4
from moorage.iam.actions import account_root_arn
from moorage.iam.login_tokens import LoginTokenExpired, LoginTokenInvalid, LoginTokens
from moorage.iam.replica_tokens import PREFIX as REPLICA_PREFIX
from moorage.iam.replica_tokens import ReplicaTokenInvalid, ReplicaTokenVerifier
from moorage.iam.secrets import SecretCipher
from moorage.iam.sigv4 import (
    INVALID_SIGNATURE,
    Authorization,
    PresignedAuthorization,
    SignatureError,
    SignedRequest,
)
from moorage.ports.access import AuthenticationFailed, Credentials, Principal
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.services.access import emulator_principal

log = logging.getLogger("moorage.iam")

UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationTokenException"
INVALID_CLIENT_TOKEN_MESSAGE = "The security token included in the request is invalid."
MISSING_AUTHENTICATION_TOKEN_MESSAGE = "Missing Authentication Token"
TOKEN_EXPIRED_MESSAGE = "Your authorization token has expired. Reauthenticate and try again."
TOKEN_INVALID_MESSAGE = "Your authorization token is invalid."
NOT_AUTHORIZED_MESSAGE = "Not Authorized"

# The login user name ECR's tokens carry ("AWS:<password>").
REGISTRY_USERNAME = "AWS"
# Loose on purpose: the emulator reads the key id when it can, and accepts anything else.
_CREDENTIAL_KEY_ID = re.compile(r"Credential=([^/,\s]+)/")


class Signer(NamedTuple):
    """Who a request says signed it, as :meth:`ApiKeyAuthenticator.screen` found them."""

    presigned: PresignedAuthorization | None
    authorization: Authorization
    key: AccessKey
    user: User


def _log_failure(
    request: SignedRequest, source_ip: str | None, failure: AuthenticationFailed
) -> None:
    log.info(
        "API authentication failed from %s: %s (%s)",
        source_ip or "?",
        failure.code,
        _claimed_key_id(request) or "no key",
    )


class ApiKeyAuthenticator:
    """SigV4 with the stored access keys (see the module docstring for the pipeline).

    ``regions``: the regions requests may be signed for (the deployment's); None accepts any.
    ``service``: the SigV4 signing name (``ecr``).
    """

    def __init__(
        self,
        metadata: MetadataStore,
        cipher: SecretCipher,
        clock: Clock,
        *,
        regions: frozenset[str] | None,
        service: str = "ecr",
        max_skew: timedelta = sigv4.DEFAULT_MAX_SKEW,
    ) -> None:
        self._metadata = metadata
        self._cipher = cipher
        self._clock = clock
        self._regions = regions
        self._service = service
        self._max_skew = max_skew

    async def authenticate(self, request: SignedRequest, source_ip: str | None) -> Principal:
        """The IAM user whose key signed ``request``. Raises AuthenticationFailed.

        ``source_ip`` goes to the log of failures only. A key whose stored secret does not
        decrypt (the master key changed) raises SecretUndecryptable: a server fault, not
        the caller's.
        """
        signer = await self.screen(request, source_ip)
        return await self.authenticate_screened(request, signer, source_ip)

    async def screen(self, request: SignedRequest, source_ip: str | None) -> Signer:
        """Refuse, before its body is read, a request that no key of ours signed: one with
        no signature, a malformed one, the wrong region, or an access key that is unknown or
        inactive. Raises AuthenticationFailed as :meth:`authenticate` would. The signature
        itself covers the body: :meth:`authenticate_screened` checks it, with what this
        returns, once the body is read."""
        try:
            return await self._signer(request)
        except AuthenticationFailed as failure:
            _log_failure(request, source_ip, failure)
            raise

    async def authenticate_screened(
        self, request: SignedRequest, signer: object, source_ip: str | None
    ) -> Principal:
        """:meth:`authenticate` for a request :meth:`screen` passed (``signer`` is what it
        returned): the key is not looked up again."""
        assert isinstance(signer, Signer)
        try:
            return self._verify(request, signer)
        except AuthenticationFailed as failure:
            _log_failure(request, source_ip, failure)
            raise

    async def _signer(self, request: SignedRequest) -> Signer:
        """The request's SigV4 parameters, and the active key and user they name."""
        presigned, authorization = _parse(request)
        if self._regions is not None and authorization.region not in self._regions:
            raise AuthenticationFailed(
                INVALID_SIGNATURE,
                f"Credential should be scoped to a valid region, not '{authorization.region}'.",
            )
        session_token = (
            presigned.session_token
            if presigned is not None
            else request.headers.get("x-amz-security-token")
        )
        if session_token is not None:
            # Temporary credentials come from STS, which this registry does not run.
            raise AuthenticationFailed(UNRECOGNIZED_CLIENT, INVALID_CLIENT_TOKEN_MESSAGE)

        async with self._metadata.read() as tx:
            key = await tx.get_access_key(authorization.access_key_id)
            user = None if key is None else await tx.get_user_by_id(key.user_id)
        if key is None or user is None or key.status is not AccessKeyStatus.ACTIVE:
            raise AuthenticationFailed(UNRECOGNIZED_CLIENT, INVALID_CLIENT_TOKEN_MESSAGE)
        return Signer(presigned, authorization, key, user)

    def _verify(self, request: SignedRequest, signer: Signer) -> Principal:
        presigned, authorization, key, user = signer
        secret = self._cipher.decrypt(key.secret_ciphertext, key.access_key_id)

        now = self._clock()
        try:
            if presigned is not None:
                sigv4.verify_presigned(
                    request, presigned, secret, now, self._service, self._max_skew
                )
            else:
                sigv4.verify(request, authorization, secret, now, self._service, self._max_skew)
        except SignatureError as error:
            raise AuthenticationFailed(error.code, error.message) from None
        return user_principal(user, key.access_key_id)


class EmulatorApiAuthenticator:
    """Emulator mode: every API request is ``account``'s root, whatever it carries."""

    def __init__(self, account: str) -> None:
        self._principal = emulator_principal(account)

    async def authenticate(self, request: SignedRequest, source_ip: str | None) -> Principal:
        """The account's root, with the access key id the request names (when it names one)."""
        return replace(self._principal, access_key_id=_claimed_key_id(request))


class RegistryAuthenticator:
    """``/v2/`` logins with login tokens (see the module docstring)."""

    def __init__(
        self,
        metadata: MetadataStore,
        tokens: LoginTokens,
        clock: Clock,
        *,
        replicas: ReplicaTokenVerifier | None = None,
        regions: frozenset[str] = frozenset(),
    ) -> None:
        """``replicas``: the deployments allowed to replicate into this one, and ``regions``
        the regions a replication token may name (those served here)."""
        self._metadata = metadata
        self._tokens = tokens
        self._clock = clock
        self._replicas = replicas
        self._regions = regions

    async def authenticate(self, credentials: Credentials) -> Principal:
        """The IAM user the token was issued to, as it is now; or, for another deployment's
        replication token, its source account's root acting as replication only. Raises
        Unauthenticated, or TokenExpired (an AccessDenied) for a token past its expiry."""
        password = _password(credentials.authorization)
        if password.startswith(REPLICA_PREFIX):
            return self._replica(password, credentials)
        try:
            claims = self._tokens.verify(password, self._clock())
        except LoginTokenExpired:
            raise TokenExpired(TOKEN_EXPIRED_MESSAGE) from None
        except LoginTokenInvalid:
            log.info("registry login with an invalid token from %s", credentials.source_ip or "?")
            raise Unauthenticated(TOKEN_INVALID_MESSAGE) from None
        if claims.user_id is None or claims.access_key_id is None:
            # An emulator token (account root) is no good once the emulator is off.
            raise Unauthenticated(TOKEN_INVALID_MESSAGE)
        async with self._metadata.read() as tx:
            key = await tx.get_access_key(claims.access_key_id)
            user = await tx.get_user_by_id(claims.user_id)
        if (
            key is None
            or user is None
            or key.user_id != user.user_id
            or key.status is not AccessKeyStatus.ACTIVE
            or user.registry_id != claims.registry_id
        ):
            # Deleted or deactivated since the login: the token dies with its key.
            log.info(
                "registry login token of %s no longer valid: its user or key %s is gone or "
                "inactive",
                claims.user_id,
                claims.access_key_id,
            )
            raise Unauthenticated(TOKEN_INVALID_MESSAGE)
        return user_principal(user, key.access_key_id)

    def _replica(self, token: str, credentials: Credentials) -> Principal:
        if not self._replicas:
            raise Unauthenticated(TOKEN_INVALID_MESSAGE)
        try:
            claims = self._replicas.verify(token, self._clock())
        except ReplicaTokenInvalid as invalid:
            log.info("replication from %s refused: %s", credentials.source_ip or "?", invalid)
            raise Unauthenticated(TOKEN_INVALID_MESSAGE) from None
        if claims.destination_region not in self._regions:
            log.info(
                "replication token for %s, a region not served here", claims.destination_region
            )
            raise Unauthenticated(TOKEN_INVALID_MESSAGE)
        return Principal(
            registry_id=claims.source_account,
            arn=account_root_arn(claims.source_account),
            replicating=True,
            acts_in=claims.destination_account,
        )


def user_principal(user: User, access_key_id: str) -> Principal:
    """The principal of an IAM user calling with one of its keys."""
    return Principal(
        registry_id=user.registry_id,
        arn=user.arn,
        user_id=user.user_id,
        username=user.name,
        access_key_id=access_key_id,
    )


def _parse(request: SignedRequest) -> tuple[PresignedAuthorization | None, Authorization]:
    """The request's SigV4 parameters: from a presigned query, else the Authorization header.

    Raises AuthenticationFailed: MissingAuthenticationTokenException when there are none,
    IncompleteSignatureException when they are malformed.
    """
    try:
        presigned = sigv4.parse_presigned(request.query)
        if presigned is not None:
            return presigned, presigned.authorization
        header = request.headers.get("authorization")
        if header is None:
            raise AuthenticationFailed(
                MISSING_AUTHENTICATION_TOKEN, MISSING_AUTHENTICATION_TOKEN_MESSAGE
            )
        return None, sigv4.parse_authorization(header)
    except SignatureError as error:
        raise AuthenticationFailed(error.code, error.message) from None


def _claimed_key_id(request: SignedRequest) -> str | None:
    """The access key id a request names, if it can be read (for logs and the emulator)."""
    header = request.headers.get("authorization", "")
    found = _CREDENTIAL_KEY_ID.search(header)
    if found is None:
        found = re.search(r"(?:^|&)X-Amz-Credential=([^/&%]+)(?:/|%2F)", request.query)
    return found.group(1) if found else None


def _password(authorization: str | None) -> str:
    """The login token in an Authorization header (Basic ``AWS:<token>`` or Bearer)."""
    if not authorization:
        raise Unauthenticated(NOT_AUTHORIZED_MESSAGE)
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() != "basic" or not value:
        raise Unauthenticated(NOT_AUTHORIZED_MESSAGE)
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(TOKEN_INVALID_MESSAGE) from None
    username, colon, password = decoded.partition(":")
    if not colon or username != REGISTRY_USERNAME or not password:
        raise Unauthenticated(TOKEN_INVALID_MESSAGE)
    return password
