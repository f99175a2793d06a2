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


def _request_timeout(exc: errors.RegistryError) -> ApiError:
    return ApiError("RequestTimeoutException", exc.message, status=408)


def _invalid_layer_part(exc: errors.RegistryError) -> ApiError:
    # Only the received size is known here; an UploadLayerPart handler that knows the registry,
    # repository and upload id should raise the complete ApiError itself.
    size = getattr(exc, "size", 0)
    extras = {"last_valid_byte_received": size - 1} if size > 0 else {}
    return ApiError("InvalidLayerPartException", exc.message, **extras)


# Domain exception -> AWS error name (status from the name) or a function building the ApiError.
# The first row whose type matches wins, so a subclass goes above its base. To map a new domain
# exception, add one row; an unmapped one becomes a 500 ServerException (and is logged).
DOMAIN_ERRORS: tuple[tuple[type[errors.RegistryError], str | Translate], ...] = (
    (errors.InvalidName, INVALID_PARAMETER),
    (errors.InvalidTag, INVALID_PARAMETER),
    (errors.InvalidReference, INVALID_PARAMETER),
    (errors.InvalidDigest, INVALID_PARAMETER),
    # -- ECR API images (subclasses, above their bases)
    (errors.ImageDigestDoesNotMatch, "ImageDigestDoesNotMatchException"),
    (errors.LayersNotFound, "LayersNotFoundException"),
    (errors.ReferencedImagesNotFound, "ReferencedImagesNotFoundException"),
    (errors.ImageAlreadyExists, "ImageAlreadyExistsException"),
    (errors.TagImmutable, "ImageTagAlreadyExistsException"),
    (errors.EmptyUpload, "EmptyUploadException"),
    (errors.LayerAlreadyExists, "LayerAlreadyExistsException"),
    (errors.LayerInaccessible, "LayerInaccessibleException"),
    # ECR's names for bad layer content (PutImage's own digest check is
    # ImageDigestDoesNotMatch, above).
    (errors.DigestMismatch, "InvalidLayerException"),
    (errors.SizeMismatch, "InvalidLayerException"),
    (errors.RepositoryNotFound, "RepositoryNotFoundException"),
    (errors.RepositoryAlreadyExists, "RepositoryAlreadyExistsException"),
    (errors.RepositoryNotEmpty, "RepositoryNotEmptyException"),
    # Repository settings, resource tags and policies (PolicyTextInvalid is an
    # InvalidParameter: ECR words a bad policy as an invalid 'PolicyText' parameter).
    (errors.InvalidParameter, INVALID_PARAMETER),
    (errors.InvalidTagParameter, "InvalidTagParameterException"),
    (errors.TooManyTags, "TooManyTagsException"),
    (errors.RepositoryPolicyNotFound, "RepositoryPolicyNotFoundException"),
    (errors.RegistryPolicyNotFound, "RegistryPolicyNotFoundException"),
    (errors.LifecyclePolicyNotFound, "LifecyclePolicyNotFoundException"),
    (errors.LifecyclePolicyPreviewNotFound, "LifecyclePolicyPreviewNotFoundException"),
    (errors.LifecyclePolicyPreviewInProgress, "LifecyclePolicyPreviewInProgressException"),
    (errors.ScanNotFound, "ScanNotFoundException"),
    (errors.ScanLimitExceeded, "LimitExceededException"),
    (errors.UnsupportedImageType, "UnsupportedImageTypeException"),
    (errors.ScanningValidation, VALIDATION_EXCEPTION),
    (errors.BlobUnknown, "LayersNotFoundException"),
    (errors.UploadUnknown, "UploadNotFoundException"),
    (errors.RangeInvalid, _invalid_layer_part),
    (errors.UploadInvalid, "InvalidLayerPartException"),
    # ECR answers a malformed manifest with "Invalid parameter at 'ImageManifest' ...".
    (errors.ManifestInvalid, INVALID_PARAMETER),
    (errors.ManifestUnknown, "ImageNotFoundException"),
    (errors.ManifestBlobUnknown, "LayersNotFoundException"),
    # The domain's Unsupported is a refused request (e.g. deleting an image an index lists),
    # not an API this registry lacks: that is UnsupportedOperationException, from the dispatcher.
    (errors.Unsupported, INVALID_PARAMETER),
    (errors.PullThroughCacheRuleNotFound, "PullThroughCacheRuleNotFoundException"),
    (errors.PullThroughCacheRuleAlreadyExists, "PullThroughCacheRuleAlreadyExistsException"),
    (errors.UnsupportedUpstreamRegistry, "UnsupportedUpstreamRegistryException"),
    (errors.PullThroughCacheRuleLimitExceeded, "LimitExceededException"),
    (errors.SecretNotFound, "SecretNotFoundException"),
    (errors.UnableToAccessSecret, "UnableToAccessSecretException"),
    (errors.TemplateNotFound, "TemplateNotFoundException"),
    (errors.TemplateAlreadyExists, "TemplateAlreadyExistsException"),
    (errors.TemplateLimitExceeded, "LimitExceededException"),
    (errors.AccessDenied, ACCESS_DENIED),
    (errors.Unauthenticated, "UnrecognizedClientException"),
    (errors.TooManyRequests, "ThrottlingException"),
    (errors.RequestBodyTimeout, _request_timeout),
)


def api_error_for(exc: errors.RegistryError) -> ApiError | None:
    """The ApiError for a domain exception, or None when :data:`DOMAIN_ERRORS` has no row."""
    for kind, target in DOMAIN_ERRORS:
        if isinstance(exc, kind):
            if isinstance(target, str):
                return ApiError(target, exc.message)
            return target(exc)
    return None
