"""ECR Public's table from domain exceptions to its AWS error names (``aws/errors.py`` says
how a table is read). Its rows are ECR's, but for the errors only ECR Public has, and for
what ECR Public's model does not name (scans, lifecycle and the rest are not public
features, so no public operation raises them)."""

from __future__ import annotations

from moorage.domain import errors
from moorage.protocols.aws.ecr.errors import DOMAIN_ERRORS as ECR_ERRORS
from moorage.protocols.aws.errors import ErrorTable

# ECR Public's answer for an operation or option it does not offer (its model names it on
# every operation): moorage's unbuilt ECR Public operations answer it too.
UNSUPPORTED_COMMAND = "UnsupportedCommandException"

DOMAIN_ERRORS: ErrorTable = (
    (errors.PublicRegistryNotFound, "RegistryNotFoundException"),
    (errors.CatalogDataNotFound, "RepositoryCatalogDataNotFoundException"),
    *ECR_ERRORS,
)
