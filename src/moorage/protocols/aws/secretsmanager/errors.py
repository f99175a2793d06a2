"""Secrets Manager's table from domain exceptions to its AWS error names (``aws/errors.py``
says how a table is read)."""

from __future__ import annotations

from moorage.domain import errors
from moorage.protocols.aws.errors import ACCESS_DENIED, INVALID_PARAMETER, ErrorTable

DOMAIN_ERRORS: ErrorTable = (
    (errors.SecretNotFound, "ResourceNotFoundException"),
    (errors.SecretExists, "ResourceExistsException"),
    (errors.SecretRequestInvalid, "InvalidRequestException"),
    (errors.SecretLimitExceeded, "LimitExceededException"),
    (errors.UnableToAccessSecret, "DecryptionFailure"),
    (errors.InvalidParameter, INVALID_PARAMETER),
    (errors.AccessDenied, ACCESS_DENIED),
)
