"""ECR API errors: `ApiError`, and the one table from domain exceptions to AWS error names.

On the wire an error is HTTP 400 (500 for ``ServerException``) with the body
``{"__type": <name>, "message": <text>, ...extra members}`` and the header
``x-amzn-RequestId`` (see ``responses.py``; ``shapes.error_body`` writes the body).

Where each error comes from, in the order a request meets them:

    UnknownOperationException          method, X-Amz-Target or Content-Type not of this API
    RequestEntityTooLargeException     body over the cap (413)
    MissingAuthenticationTokenException, UnrecognizedClientException,
    IncompleteSignatureException, InvalidSignatureException, ExpiredTokenException
                                       the authenticator (``auth.py``; factories below)
    SerializationException             body is not JSON, or a value has the wrong JSON type
    UnsupportedOperationException      an ECR operation this registry has not built
    InvalidParameterException | ValidationException
                                       a modelled constraint failed (``validation.py``)
    AccessDeniedException              the authorizer said no (``context.py``)
    <modelled errors>                  raised by operations, directly or as domain exceptions
                                       through :data:`DOMAIN_ERRORS`
    ServerException (500)              anything else; details go to the log only

Statuses: AWS JSON services answer 400 for every client error, including the front-door
authentication errors and ``AccessDeniedException`` (botocore reads the code from ``__type``, not
the status). Our one exception is ``RequestEntityTooLargeException``: 413 tells proxies what
happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from moorage.domain import errors
from moorage.iam.sigv4 import SignatureError

SERVER_EXCEPTION = "ServerException"
INVALID_PARAMETER = "InvalidParameterException"
VALIDATION_EXCEPTION = "ValidationException"
SERIALIZATION_EXCEPTION = "SerializationException"
UNKNOWN_OPERATION = "UnknownOperationException"
UNSUPPORTED_OPERATION = "UnsupportedOperationException"
ACCESS_DENIED = "AccessDeniedException"
THROTTLING = "ThrottlingException"
REQUEST_TOO_LARGE = "RequestEntityTooLargeException"

# Statuses other than 400.
_STATUS = MappingProxyType({SERVER_EXCEPTION: 500, REQUEST_TOO_LARGE: 413})


class ApiError(Exception):
    """An error answered to the client exactly as given.

    ``type_name`` is the AWS error name (``__type``); ``message`` is sent as is, so it must not
    hold secrets. ``status`` defaults to 400, or 500 for ``ServerException``. ``extras`` are the
    error shape's other members, with snake_case keys (``last_valid_byte_received``); they are
    written in the model's names, and only modelled errors may carry them (``shapes.error_body``
    raises ``ValueError`` for an unknown member).
    """

    def __init__(
        self, type_name: str, message: str, *, status: int | None = None, **extras: object
    ) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.status = status if status is not None else _STATUS.get(type_name, 400)
        self.extras: Mapping[str, object] = MappingProxyType(dict(extras))


# --- Front-door errors, for authenticators --------------------------------------------------


def missing_authentication_token() -> ApiError:
    """No ``Authorization`` header (and no presigned query)."""
    return ApiError("MissingAuthenticationTokenException", "Missing Authentication Token")


def unrecognized_client() -> ApiError:
    """The access key id is unknown (or disabled)."""
    return ApiError(
        "UnrecognizedClientException", "The security token included in the request is invalid."
    )


def expired_token() -> ApiError:
    """The session token has expired."""
    return ApiError(
        "ExpiredTokenException", "The security token included in the request is expired"
    )


def from_signature_error(error: SignatureError) -> ApiError:
    """``IncompleteSignatureException`` or ``InvalidSignatureException`` from the verifier."""
    return ApiError(error.code, error.message)


def server_error(request_id: str) -> ApiError:
    """The generic 500: the message names the request id, the log holds the details."""
    return ApiError(SERVER_EXCEPTION, f"An internal error occurred. Request id: {request_id}")


# --- Domain exceptions ------------------------------------------------------------------------

Translate = Callable[[errors.RegistryError], ApiError]
# Domain exception -> AWS error name (status from the name) or a function building the ApiError;
# each service has one (``ecr/errors.py``). The first row whose type matches wins.
ErrorTable = tuple[tuple[type[errors.RegistryError], "str | Translate"], ...]


def api_error_for(exc: errors.RegistryError, table: ErrorTable) -> ApiError | None:
    """The ApiError for a domain exception, or None when ``table`` has no row for it."""
    for kind, target in table:
        if isinstance(exc, kind):
            if isinstance(target, str):
                return ApiError(target, exc.message)
            return target(exc)
    return None
