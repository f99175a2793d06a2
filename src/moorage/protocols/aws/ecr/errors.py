"""ECR's table from domain exceptions to its AWS error names (``aws/errors.py`` says how a
table is read); an unmapped exception becomes a 500 ServerException (and is logged)."""

from __future__ import annotations

from moorage.domain import errors
from moorage.protocols.aws.errors import (
    ACCESS_DENIED,
    INVALID_PARAMETER,
    VALIDATION_EXCEPTION,
    ApiError,
    ErrorTable,
)


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
DOMAIN_ERRORS: ErrorTable = (
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
    (errors.ReplicationBackfillNotFound, "ReplicationBackfillNotFoundException"),
    (errors.ReplicationBackfillInProgress, "ReplicationBackfillInProgressException"),
    (errors.ReplicationBackfillInvalidStatus, "ReplicationBackfillInvalidStatusException"),
    (errors.ReplicationBackfillLimitExceeded, "LimitExceededException"),
    (errors.AccessDenied, ACCESS_DENIED),
    (errors.Unauthenticated, "UnrecognizedClientException"),
    (errors.TooManyRequests, "ThrottlingException"),
    (errors.RequestBodyTimeout, _request_timeout),
)
