"""The domain exception tree.

Services raise these; each protocol maps them to its own wire error in one table
(``protocols/oci/errors.py`` for ``/v2/``).

    RegistryError
    ├── InvalidName              repository name breaks ECR's grammar
    ├── InvalidTag               tag breaks the OCI tag grammar
    ├── InvalidReference         neither a tag nor a digest
    ├── InvalidDigest            malformed digest string, or unsupported algorithm
    ├── DigestMismatch           content does not hash to the digest it claims
    ├── SizeMismatch             content length differs from the declared size
    ├── RepositoryNotFound
    ├── RepositoryAlreadyExists
    ├── RepositoryNotEmpty       delete refused: the repository still holds images
    ├── BlobUnknown
    ├── UploadUnknown            no such upload session (or it belongs elsewhere)
    ├── UploadInvalid            the upload cannot proceed as asked
    │   └── RangeInvalid         chunk does not start where the upload ends
    ├── ManifestInvalid          unparseable or ill-formed manifest
    │   └── ManifestTooLarge
    ├── ManifestUnknown
    ├── ManifestBlobUnknown      a manifest references a blob or child manifest not present
    ├── Unsupported              the operation is not supported here
    ├── AccessDenied             authenticated, but not allowed
    │   └── TokenExpired         a /v2/ login token past its 12 hours (403 DENIED, ECR's text)
    ├── Unauthenticated          credentials missing or invalid
    ├── TooManyRequests          a limit on concurrent work was reached; retry later
    │   └── PullRateExceeded     anonymous (or authenticated) public pulls past their rate
    ├── RequestBodyTimeout       the client stopped sending a body it announced
    │
    │   repository settings
    ├── TagImmutable             a push would move an immutable tag to another image
    ├── RepositoryPolicyNotFound
    ├── RegistryPolicyNotFound
    ├── InvalidParameter         a request value breaks a rule that services check
    │   └── PolicyTextInvalid    a repository or registry policy that does not parse
    ├── InvalidTagParameter      a resource tag key or value breaks ECR's rules
    ├── TooManyTags              a repository would carry more than 50 resource tags
    │
    │   ECR API images and layers (subclasses keep their /v2/ meaning)
    ├── ImageAlreadyExists       PutImage of a stored digest that changes no tag
    ├── ManifestBlobUnknown
    │   ├── LayersNotFound       ... a config or layer blob is missing
    │   └── ReferencedImagesNotFound  ... a child manifest of an index is missing
    ├── DigestMismatch
    │   └── ImageDigestDoesNotMatch   PutImage's imageDigest is not the manifest's digest
    ├── UploadInvalid
    │   └── EmptyUpload          completing an upload that received no bytes
    ├── LayerAlreadyExists       completing an upload of a blob the repository holds
    ├── LayerInaccessible        a download URL for a blob that no image references
    │
    │   identities (accounts, IAM users, access keys, identity policies, login tokens)
    ├── InvalidAccount           account id not 12 digits, or account name out of bounds
    ├── InvalidUserName          IAM user name (or path) breaks IAM's grammar
    ├── InvalidPolicyName        inline policy name breaks IAM's grammar
    ├── MalformedPolicyDocument  identity policy that does not parse (IAM's own error name)
    ├── AccountAlreadyExists
    ├── AccountNotFound
    ├── UserAlreadyExists
    ├── UserNotFound
    ├── AdminAlreadyExists       ``admin init`` ran before on this account
    ├── AccessKeyNotFound
    ├── AccessKeyLimitExceeded   a user would hold more than 2 access keys
    ├── UserPolicyNotFound
    │
    │   lifecycle policies
    ├── InvalidParameter
    │   └── LifecyclePolicyInvalid  policy text breaks ECR's grammar (ECR's message)
    ├── LifecyclePolicyNotFound
    ├── LifecyclePolicyPreviewNotFound
    ├── LifecyclePolicyPreviewInProgress  a preview of the repository is still running
    │
    │   pull-through cache
    ├── PullThroughCacheRuleNotFound
    ├── PullThroughCacheRuleAlreadyExists
    ├── UnsupportedUpstreamRegistry  an upstreamRegistry whose URL is not its own
    ├── PullThroughCacheRuleLimitExceeded  a registry would have more than 50 rules
    ├── SecretNotFound           a credentialArn that names no secret
    ├── UnableToAccessSecret     a secret that exists but cannot be used
    ├── AccessDenied
    │   └── PushToCacheRefused   a push into a repository a cache rule owns
    ├── UpstreamUnavailable      the upstream did not answer, or answered 429 / 5xx, and
    │                            nothing is cached to serve instead
    │
    │   repository creation templates
    ├── TemplateNotFound
    ├── TemplateAlreadyExists
    ├── TemplateLimitExceeded
    │
    │   Secrets Manager (and SecretNotFound, above)
    ├── SecretExists             a name that has a secret, or a version id that has a value
    ├── SecretRequestInvalid     not possible in the secret's state (marked for deletion, ...)
    ├── SecretLimitExceeded
    │
    │   replication backfills
    ├── ReplicationBackfillNotFound
    ├── ReplicationBackfillInProgress   one runs already to the destination's region
    ├── ReplicationBackfillInvalidStatus  a stop of one that is not running
    ├── ReplicationBackfillLimitExceeded  ten run already in the registry
    │
    │   ECR Public
    ├── PublicRegistryNotFound   a registry id or alias that names no public registry
    └── CatalogDataNotFound      a public repository that has no catalog data
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the domain and services raise on purpose."""

    def __init__(self, message: str, *, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidName(RegistryError):
    pass


class InvalidTag(RegistryError):
    pass


class InvalidReference(RegistryError):
    pass


class InvalidDigest(RegistryError):
    pass


class DigestMismatch(RegistryError):
    pass


class SizeMismatch(RegistryError):
    pass


class RepositoryNotFound(RegistryError):
    pass


class RepositoryAlreadyExists(RegistryError):
    pass


class RepositoryNotEmpty(RegistryError):
    pass


class BlobUnknown(RegistryError):
    pass


class UploadUnknown(RegistryError):
    pass


class UploadInvalid(RegistryError):
    pass


class RangeInvalid(UploadInvalid):
    """A chunk does not start at the current end of the upload (``size``)."""

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class ManifestInvalid(RegistryError):
    pass


class ManifestTooLarge(ManifestInvalid):
    pass


class ManifestUnknown(RegistryError):
    pass


class ManifestBlobUnknown(RegistryError):
    pass


class Unsupported(RegistryError):
    pass


class AccessDenied(RegistryError):
    pass


class Unauthenticated(RegistryError):
    pass


class TooManyRequests(RegistryError):
    """A limit was reached; ``retry_after`` is the seconds after which a retry may pass."""

    retry_after: float = 1.0


class PullRateExceeded(TooManyRequests):
    """A client pulled public images faster than the public address allows."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestBodyTimeout(RegistryError):
    """The client stopped sending a request body it had announced (the body timeout)."""


# -- repository settings -------------------------------------------------------------------


class TagImmutable(RegistryError):
    """The tag already names another image and the repository keeps it immutable."""


class RepositoryPolicyNotFound(RegistryError):
    pass


class RegistryPolicyNotFound(RegistryError):
    pass


class InvalidParameter(RegistryError):
    """A request value breaks a rule the services check (ECR's InvalidParameterException)."""


class PolicyTextInvalid(InvalidParameter):
    """A policy document is malformed or breaks the IAM grammar."""


class InvalidTagParameter(RegistryError):
    """A resource tag breaks ECR's rules (ECR's InvalidTagParameterException)."""


class TooManyTags(RegistryError):
    """The result would exceed ECR's 50 resource tags per repository."""


# -- ECR API images ------------------------------------------------------------------------


class ImageAlreadyExists(RegistryError):
    """PutImage of a manifest the repository holds, with no tag to add or move."""


class LayersNotFound(ManifestBlobUnknown):
    """A manifest references a config or layer blob that is not in the repository."""


class ReferencedImagesNotFound(ManifestBlobUnknown):
    """An index lists a manifest that is not in the repository."""


class ImageDigestDoesNotMatch(DigestMismatch):
    """The digest a PutImage names is not the digest of the manifest it carries."""


class EmptyUpload(UploadInvalid):
    """An upload is completed without having received any bytes."""


class LayerAlreadyExists(RegistryError):
    """An upload is completed for a blob the repository already holds."""


class LayerInaccessible(RegistryError):
    """The blob is in the repository, but no image there references it."""


# -- identities ----------------------------------------------------------------------------


class InvalidAccount(RegistryError):
    pass


class InvalidUserName(RegistryError):
    pass


class InvalidPolicyName(RegistryError):
    pass


class MalformedPolicyDocument(RegistryError):
    """An identity policy is not valid JSON or breaks the IAM grammar; the message says where."""


class AccountAlreadyExists(RegistryError):
    pass


class AccountNotFound(RegistryError):
    pass


class UserAlreadyExists(RegistryError):
    pass


class UserNotFound(RegistryError):
    pass


class AdminAlreadyExists(RegistryError):
    """``admin init`` found the account's admin user already there (and no new key asked for)."""


class AccessKeyNotFound(RegistryError):
    pass


class AccessKeyLimitExceeded(RegistryError):
    pass


class UserPolicyNotFound(RegistryError):
    pass


class TokenExpired(AccessDenied):
    """A registry login token is past its expiry; the caller must log in again."""


# -- lifecycle -----------------------------------------------------------------------------


class LifecyclePolicyInvalid(InvalidParameter):
    """A lifecycle policy text breaks ECR's grammar; the message is ECR's, detail included."""


class LifecyclePolicyNotFound(RegistryError):
    pass


class LifecyclePolicyPreviewNotFound(RegistryError):
    pass


class LifecyclePolicyPreviewInProgress(RegistryError):
    pass


# -- image scanning ------------------------------------------------------------------------


class ScanNotFound(RegistryError):
    """The image was never scanned (or its scan's results are unavailable)."""


class ScanLimitExceeded(RegistryError):
    """ECR's one scan per image per 24 hours."""


class UnsupportedImageType(RegistryError):
    """An image the scanner cannot scan: an index, or an artifact that is no image."""


class ScanningValidation(RegistryError):
    """A request the scanning configuration does not allow (ECR's ValidationException)."""


# -- pull-through cache --------------------------------------------------------------------


class PullThroughCacheRuleNotFound(RegistryError):
    pass


class PullThroughCacheRuleAlreadyExists(RegistryError):
    pass


class UnsupportedUpstreamRegistry(RegistryError):
    pass


class PullThroughCacheRuleLimitExceeded(RegistryError):
    pass


class SecretNotFound(RegistryError):
    pass


class UnableToAccessSecret(RegistryError):
    pass


class PushToCacheRefused(AccessDenied):
    """A push into a repository that a pull-through cache rule owns: its images come from
    the upstream only."""


class UpstreamUnavailable(RegistryError):
    """The upstream did not answer, or answered 429 or 5xx, and nothing is cached."""


# -- repository creation templates ---------------------------------------------------------


class TemplateNotFound(RegistryError):
    pass


class TemplateAlreadyExists(RegistryError):
    pass


class TemplateLimitExceeded(RegistryError):
    pass


# -- Secrets Manager ------------------------------------------------------------------------


class SecretExists(RegistryError):
    pass


class SecretRequestInvalid(RegistryError):
    pass


class SecretLimitExceeded(RegistryError):
    pass


# -- replication backfills ------------------------------------------------------------------


class ReplicationBackfillNotFound(RegistryError):
    pass


class ReplicationBackfillInProgress(RegistryError):
    pass


class ReplicationBackfillInvalidStatus(RegistryError):
    pass


class ReplicationBackfillLimitExceeded(RegistryError):
    pass


# -- ECR Public -------------------------------------------------------------------------------


class PublicRegistryNotFound(RegistryError):
    pass


class CatalogDataNotFound(RegistryError):
    pass
