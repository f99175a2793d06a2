"""Verify AWS Signature Version 4 on requests, the way AWS services other than S3 do.

Pure: no HTTP framework and no SDK. The protocol layer turns its request into a
`SignedRequest`, looks up the secret key for the access key id named by `parse_authorization`
(Authorization header) or `parse_presigned` (presigned URL), and calls `verify` or
`verify_presigned`. Unknown access keys (``UnrecognizedClientException``) are the caller's to
answer; everything else that can be wrong with a signature is a `SignatureError` whose ``code``
is the AWS error name to answer with:

- ``IncompleteSignatureException``: the Authorization header or a header it depends on is
  missing or malformed (no date, ``host`` not signed, a signed header absent, ...).
- ``InvalidSignatureException``: the request is well formed but the signature does not hold:
  mismatch, wrong scope (date, service), clock skew ("Signature expired: ..."), or a payload hash
  header that does not match the body.

Verification order, as a pipeline:

1. date (``X-Amz-Date``, else ``Date``) present, parsed, and within ``max_skew`` of ``now``
   (presigned: from ``max_skew`` before ``X-Amz-Date`` until ``X-Amz-Expires`` after it);
2. credential scope: date equals the request's day, service equals the expected one;
3. signed headers: ``host`` and ``x-amz-security-token`` (when sent) are signed, and every signed
   header is present;
4. payload hash: ``x-amz-content-sha256`` when sent (it must equal the body's hash unless it is
   ``UNSIGNED-PAYLOAD``), else the hash of the body;
5. canonical request -> string to sign -> signing key -> HMAC, compared in constant time.

Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html

Messages never contain the secret key, the signing key or the expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from urllib.parse import quote, unquote_plus

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
TERMINATOR = "aws4_request"
DEFAULT_MAX_SKEW = timedelta(minutes=15)

INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
INVALID_SIGNATURE = "InvalidSignatureException"

_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_MAX_EXPIRES = 7 * 24 * 3600  # a presigned URL lives at most a week, as on AWS
# AWS's unreserved set: RFC 3986 unreserved characters; everything else is percent-encoded.
_UNRESERVED = "-_.~"
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_SHA256_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


class SignatureError(Exception):
    """A request whose signature cannot be accepted.

    ``code`` is the AWS error name to answer with (``IncompleteSignatureException`` or
    ``InvalidSignatureException``); ``message`` is safe to send to the client.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 covers.

    ``path`` and ``query`` are raw, percent-encoded as received on the wire. ``headers`` may use
    any case; they are stored with lowercased names, and names that differ only in case are
    joined with ``","`` in the given order (as HTTP folds a repeated field). A caller holding a
    repeated header should join its values with ``","`` itself. ``body_sha256`` is the hex SHA-256
    of the body, computed by the caller while reading it.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body_sha256: str

    def __post_init__(self) -> None:
        folded: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            folded[key] = f"{folded[key]},{value}" if key in folded else value
        object.__setattr__(self, "headers", MappingProxyType(folded))


@dataclass(frozen=True)
class Authorization:
    """A parsed ``Authorization: AWS4-HMAC-SHA256 ...`` header.

    ``signed_headers`` are lowercased and sorted; ``signature`` is lowercase hex.
    """

    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)


@dataclass(frozen=True)
class PresignedAuthorization:
    """The SigV4 parameters of a presigned URL: what `parse_presigned` returns."""

    authorization: Authorization
    amz_date: str
    expires: timedelta
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class VerifiedScope:
    """Who signed the request and for what: the result of a successful `verify`.

    ``session_token`` is the ``X-Amz-Security-Token`` sent (and signed) with the request, if any;
    validating it is the caller's job, like looking up the access key.
    """

    access_key_id: str
    region: str
    service: str
    date: date
    session_token: str | None = field(default=None, repr=False)


def parse_authorization(header: str) -> Authorization:
    """Parse an ``Authorization`` header value of the SigV4 form.

    Accepts ``AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/service/aws4_request,
    SignedHeaders=a;b;c, Signature=<64 hex>`` with any whitespace around the commas and ``=``
    signs as AWS does. Raises `SignatureError` with ``IncompleteSignatureException`` when the
    algorithm is not SigV4 or any part is missing, repeated or malformed. Nothing is checked
    against a request here; that is `verify`'s job.
    """
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(INCOMPLETE_SIGNATURE, f"Unsupported AWS 'algorithm': '{algorithm}'.")
    params: dict[str, str] = {}
    for component in rest.split(","):
        name, eq, value = component.partition("=")
        name = name.strip()
        if not eq or not name:
            raise SignatureError(
                INCOMPLETE_SIGNATURE,
                "Authorization header requires each component to be of the form 'key=value'.",
            )
        if name in params:
            raise SignatureError(
                INCOMPLETE_SIGNATURE, f"Authorization header repeats the '{name}' parameter."
            )
        params[name] = value.strip()
    missing = [p for p in ("Credential", "SignedHeaders", "Signature") if not params.get(p)]
    if missing:
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            " ".join(f"Authorization header requires '{p}' parameter." for p in missing),
        )
    unknown = sorted(set(params) - {"Credential", "SignedHeaders", "Signature"})
    if unknown:
        raise SignatureError(
            INCOMPLETE_SIGNATURE, f"Authorization header has unknown parameter '{unknown[0]}'."
        )

    access_key_id, scope_date, region, service = _parse_credential(params["Credential"])
    signed_headers = _parse_signed_headers(params["SignedHeaders"])
    signature = params["Signature"]
    if not _SIGNATURE_RE.fullmatch(signature):
        raise SignatureError(
            INCOMPLETE_SIGNATURE, "Signature must be 64 lowercase hexadecimal characters."
        )
    return Authorization(access_key_id, scope_date, region, service, signed_headers, signature)


def signed_region(request: SignedRequest) -> str | None:
    """The region a request is signed for (its credential scope: presigned query, else the
    Authorization header), if it can be read; whether the signature holds is not checked."""
    try:
        presigned = parse_presigned(request.query)
        if presigned is not None:
            return presigned.authorization.region
        header = request.headers.get("authorization")
        return None if header is None else parse_authorization(header).region
    except SignatureError:
        return None


def verify(
    request: SignedRequest,
    authorization: Authorization,
    secret_key: str,
    now: datetime,
    expected_service: str = "ecr",
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> VerifiedScope:
    """Check that ``authorization`` is a valid SigV4 signature of ``request`` by ``secret_key``.

    ``now`` must be timezone-aware (``ValueError`` otherwise). Returns the verified scope; raises
    `SignatureError` (see the module docstring for which code, and in which order the checks
    run). The canonical URI is built as for every service but S3: the path is normalised (dot
    segments and empty segments removed) and then URI-encoded again, so an encoded ``%2F`` is
    signed as ``%252F``. Query parameters are form-decoded (``+`` is a space) and re-encoded with
    AWS's unreserved set, so a client may encode a space as ``+`` or ``%20``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    headers = request.headers
    amz_date, signed_at = _request_time(headers)
    _check_skew(signed_at, now, max_skew)
    _verify_signature(
        request,
        authorization,
        secret_key,
        amz_date,
        expected_service,
        canonical_query(request.query),
    )
    return VerifiedScope(
        access_key_id=authorization.access_key_id,
        region=authorization.region,
        service=authorization.service,
        date=signed_at.date(),
        session_token=headers.get("x-amz-security-token"),
    )


def parse_presigned(query: str) -> PresignedAuthorization | None:
    """Parse the SigV4 parameters of a presigned URL from its raw query string.

    Returns ``None`` when the query has no ``X-Amz-Algorithm`` parameter (the request is not
    presigned; look for an Authorization header instead). Otherwise requires
    ``X-Amz-Algorithm=AWS4-HMAC-SHA256``, ``X-Amz-Credential``, ``X-Amz-Date``,
    ``X-Amz-Expires`` (1 to 604800 seconds), ``X-Amz-SignedHeaders`` and ``X-Amz-Signature``,
    each exactly once, and raises `SignatureError` (``IncompleteSignatureException``) if not.
    """
    params: dict[str, list[str]] = {}
    for name, value in _query_pairs(query):
        params.setdefault(name, []).append(value)
    if "X-Amz-Algorithm" not in params:
        return None
    required = (
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    )
    missing = [p for p in required if not params.get(p, [""])[0]]
    if missing:
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            " ".join(f"Query-string authentication requires the {p} parameter." for p in missing),
        )
    for name in (*required, "X-Amz-Security-Token"):
        if len(params.get(name, ())) > 1:
            raise SignatureError(INCOMPLETE_SIGNATURE, f"The {name} parameter is repeated.")
    single = {name: values[0] for name, values in params.items()}
    if single["X-Amz-Algorithm"] != ALGORITHM:
        raise SignatureError(
            INCOMPLETE_SIGNATURE, f"Unsupported AWS 'algorithm': '{single['X-Amz-Algorithm']}'."
        )
    expires = single["X-Amz-Expires"]
    if not (expires.isascii() and expires.isdigit() and 1 <= int(expires) <= _MAX_EXPIRES):
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            f"X-Amz-Expires must be a number of seconds from 1 to {_MAX_EXPIRES}.",
        )
    amz_date = single["X-Amz-Date"]
    _parse_amz_date(amz_date)
    access_key_id, scope_date, region, service = _parse_credential(single["X-Amz-Credential"])
    signature = single["X-Amz-Signature"]
    if not _SIGNATURE_RE.fullmatch(signature):
        raise SignatureError(
            INCOMPLETE_SIGNATURE, "Signature must be 64 lowercase hexadecimal characters."
        )
    authorization = Authorization(
        access_key_id,
        scope_date,
        region,
        service,
        _parse_signed_headers(single["X-Amz-SignedHeaders"]),
        signature,
    )
    return PresignedAuthorization(
        authorization=authorization,
        amz_date=amz_date,
        expires=timedelta(seconds=int(expires)),
        session_token=single.get("X-Amz-Security-Token"),
    )


def verify_presigned(
    request: SignedRequest,
    presigned: PresignedAuthorization,
    secret_key: str,
    now: datetime,
    expected_service: str = "ecr",
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> VerifiedScope:
    """Check a presigned (query-string authenticated) request, as `verify` does for headers.

    Differences from `verify`: the signing time is ``X-Amz-Date`` from the query; the request is
    valid from ``max_skew`` before it until ``X-Amz-Expires`` after it (an expired URL is
    ``InvalidSignatureException``, "Request has expired"; the wording is ours); the canonical
    query is every parameter but ``X-Amz-Signature``; ``session_token`` is
    ``X-Amz-Security-Token`` from the query (signed, since the query is). ``now`` must be
    timezone-aware (``ValueError`` otherwise).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    signed_at = _parse_amz_date(presigned.amz_date)
    _check_not_future(signed_at, now, max_skew)
    if now > signed_at + presigned.expires:
        raise SignatureError(
            INVALID_SIGNATURE,
            f"Request has expired: signed at {presigned.amz_date} for "
            f"{int(presigned.expires.total_seconds())} seconds, and it is now "
            f"{_amz(now)}.",
        )
    authorization = presigned.authorization
    signed_query = [p for p in _query_pairs(request.query) if p[0] != "X-Amz-Signature"]
    _verify_signature(
        request,
        authorization,
        secret_key,
        presigned.amz_date,
        expected_service,
        _canonical_pairs(signed_query),
    )
    return VerifiedScope(
        access_key_id=authorization.access_key_id,
        region=authorization.region,
        service=authorization.service,
        date=signed_at.date(),
        session_token=presigned.session_token,
    )


def _verify_signature(
    request: SignedRequest,
    authorization: Authorization,
    secret_key: str,
    amz_date: str,
    expected_service: str,
    signed_query: str,
) -> None:
    """Steps 2 to 5 of the module docstring's pipeline, shared by both forms of SigV4."""
    headers = request.headers
    if authorization.scope_date != amz_date[:8]:
        raise SignatureError(
            INVALID_SIGNATURE,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{authorization.scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    if authorization.service != expected_service:
        raise SignatureError(
            INVALID_SIGNATURE,
            f"Credential should be scoped to correct service: '{expected_service}'.",
        )

    signed = set(authorization.signed_headers)
    if "host" not in signed:
        raise SignatureError(
            INCOMPLETE_SIGNATURE, "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    if "x-amz-security-token" in headers and "x-amz-security-token" not in signed:
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
        )
    absent = [name for name in authorization.signed_headers if name not in headers]
    if absent:
        raise SignatureError(
            INCOMPLETE_SIGNATURE, f"Signed header '{absent[0]}' is missing from the request."
        )

    canonical_request = "\n".join(
        (
            request.method.upper(),
            canonical_uri(request.path),
            signed_query,
            "".join(f"{n}:{_trim(headers[n])}\n" for n in authorization.signed_headers),
            ";".join(authorization.signed_headers),
            _payload_hash(headers, request.body_sha256),
        )
    )
    expected = _signature(
        secret_key,
        amz_date,
        authorization.region,
        authorization.service,
        canonical_request,
    )
    if not hmac.compare_digest(expected, authorization.signature):
        raise SignatureError(INVALID_SIGNATURE, _SIGNATURE_MISMATCH)


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a raw (percent-encoded) path, for every service but S3.

    Removes ``.`` and ``..`` segments and empty segments (AWS collapses repeated slashes), keeps
    a trailing slash, and URI-encodes the result once more (``/`` and ``~`` kept), as botocore
    and the AWS SDKs do.
    """
    if not raw_path:
        return "/"
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    leading = "/" if raw_path.startswith("/") else ""
    trailing = "/" if raw_path.endswith("/") and segments else ""
    return quote(leading + "/".join(segments) + trailing, safe="/~")


def canonical_query(raw_query: str) -> str:
    """The canonical query string of a raw query string.

    Each ``name=value`` pair is form-decoded and URI-encoded again with AWS's unreserved set
    (``A-Za-z0-9-_.~``), then pairs are sorted by encoded name, then encoded value. A pair
    without ``=`` has an empty value. Empty pairs (``a=1&&b=2``) are ignored.
    """
    return _canonical_pairs(_query_pairs(raw_query))


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Form-decoded ``(name, value)`` pairs, in order; empty pairs are dropped."""
    pairs: list[tuple[str, str]] = []
    for pair in raw_query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def _canonical_pairs(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted((_uri_encode(name), _uri_encode(value)) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def _uri_encode(value: str) -> str:
    return quote(value, safe=_UNRESERVED)


def _trim(value: str) -> str:
    # Trimall: strip, and collapse each run of whitespace inside the value to one space.
    return " ".join(value.split())


def _parse_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            "Credential must have the form "
            "'<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request'.",
        )
    access_key_id, scope_date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'.",
        )
    try:
        valid_date = len(scope_date) == 8 and bool(datetime.strptime(scope_date, "%Y%m%d"))
    except ValueError:
        valid_date = False
    if not valid_date:
        raise SignatureError(
            INCOMPLETE_SIGNATURE, f"Credential scope date '{scope_date}' is not YYYYMMDD."
        )
    return access_key_id, scope_date, region, service


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = value.split(";")
    if any(not n or n != n.strip() for n in names):
        raise SignatureError(INCOMPLETE_SIGNATURE, "SignedHeaders must be a ';'-separated list.")
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        raise SignatureError(INCOMPLETE_SIGNATURE, "SignedHeaders must not repeat a header.")
    return tuple(sorted(lowered))


def _request_time(headers: Mapping[str, str]) -> tuple[str, datetime]:
    """The request's signing time as the ISO-8601 basic string and an aware datetime."""
    if "x-amz-date" in headers:
        raw = headers["x-amz-date"].strip()
        return raw, _parse_amz_date(raw)
    if "date" in headers:
        try:
            parsed = parsedate_to_datetime(headers["date"])
        except (TypeError, ValueError):
            raise SignatureError(
                INCOMPLETE_SIGNATURE, "Date header must be an RFC 7231 HTTP date."
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        signed_at = parsed.astimezone(UTC)
        return signed_at.strftime(_AMZ_DATE_FORMAT), signed_at
    raise SignatureError(
        INCOMPLETE_SIGNATURE,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )


def _parse_amz_date(raw: str) -> datetime:
    try:
        parsed = datetime.strptime(raw, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        parsed = None
    # strptime accepts unpadded fields ("2015830T..."); the signed string must be exact.
    if parsed is None or len(raw) != 16:
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            "X-Amz-Date must be in the ISO-8601 basic format 'YYYYMMDDTHHMMSSZ'.",
        )
    return parsed


def _check_skew(signed_at: datetime, now: datetime, max_skew: timedelta) -> None:
    # AWS's own wording, including "15 min." computed from the allowed skew.
    if signed_at < now - max_skew:
        earliest = _amz(now - max_skew)
        raise SignatureError(
            INVALID_SIGNATURE,
            f"Signature expired: {_amz(signed_at)} is now earlier than {earliest} "
            f"({_amz(now)} - {_minutes(max_skew)})",
        )
    _check_not_future(signed_at, now, max_skew)


def _check_not_future(signed_at: datetime, now: datetime, max_skew: timedelta) -> None:
    if signed_at > now + max_skew:
        latest = _amz(now + max_skew)
        raise SignatureError(
            INVALID_SIGNATURE,
            f"Signature not yet current: {_amz(signed_at)} is still later than {latest} "
            f"({_amz(now)} + {_minutes(max_skew)})",
        )


def _amz(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_AMZ_DATE_FORMAT)


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} min."


def _payload_hash(headers: Mapping[str, str], body_sha256: str) -> str:
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return body_sha256.lower()
    declared = declared.strip()
    if declared == UNSIGNED_PAYLOAD:
        return declared
    if not _SHA256_HEX_RE.fullmatch(declared):
        raise SignatureError(
            INVALID_SIGNATURE,
            "x-amz-content-sha256 must be a hex SHA-256 or 'UNSIGNED-PAYLOAD'.",
        )
    if not hmac.compare_digest(declared.lower(), body_sha256.lower()):
        raise SignatureError(
            INVALID_SIGNATURE,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    # The declared value is what the client signed; its case matters to the signature.
    return declared


def _signature(
    secret_key: str, amz_date: str, region: str, service: str, canonical_request: str
) -> str:
    scope = f"{amz_date[:8]}/{region}/{service}/{TERMINATOR}"
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        )
    )
    key = _hmac(f"AWS4{secret_key}".encode(), amz_date[:8])
    for part in (region, service, TERMINATOR):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
