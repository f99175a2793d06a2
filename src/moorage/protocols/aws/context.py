"""What an ECR API operation gets besides its input: who calls, where, and the services.

Also the one place that asks the authorizer on the API's behalf, and words its refusal as AWS
does: ``User: <principal arn> is not authorized to perform: ecr:<Action> on resource:
<repository arn or *>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from moorage.domain.errors import AccessDenied
from moorage.iam.actions import Action
from moorage.ports.access import AccessRequest, Authorizer, Credentials, Principal
from moorage.protocols.aws.errors import ACCESS_DENIED, ApiError
from moorage.protocols.aws.resources import ECR, RepositoryArn, ResourceNaming

__all__ = ["ApiContext", "RepositoryArn", "parse_repository_arn"]


def parse_repository_arn(arn: str, *, region: str, path: str = "resourceArn") -> RepositoryArn:
    """An ECR repository ARN split (``ResourceNaming.parse_repository_arn``)."""
    return ECR.parse_repository_arn(arn, region=region, path=path)


S = TypeVar("S")


@dataclass(frozen=True)
class ApiContext(Generic[S]):
    """One authenticated, validated, authorized ECR API call, as its operation sees it.

    ``registry_id`` is the account the call addresses: the input's ``registryId``, the account
    of its ``resourceArn``, or the caller's own account. ``repository`` is the repository the
    dispatcher authorized the operation's action on (None for registry-level checks).
    ``services`` is whatever the application mounted the API with (opaque here).
    """

    operation: str
    principal: Principal
    registry_id: str
    region: str
    request_id: str
    source_ip: str | None
    secure_transport: bool
    services: S
    authorizer: Authorizer = field(repr=False)
    repository: str | None = None
    # How the client reached the server (Host header, http/https): default registry URIs and
    # download URLs are built from it (domain/addresses.py).
    host: str = "localhost"
    scheme: str = "http"
    # The actions authorized so far, in order: a service whose handlers authorize their own
    # resources (Secrets Manager) must have asked at least once (the dispatcher checks).
    checks: list[str] = field(default_factory=list, compare=False)
    # The service's actions and ARNs (ECR's, or ECR Public's).
    naming: ResourceNaming = ECR

    def repository_arn(self, name: str) -> str:
        return self.naming.repository_arn(self.region, self.registry_id, name)

    async def authorize(
        self,
        action: Action | str,
        repository: str | None = None,
        *,
        request_tags: Mapping[str, str] | None = None,
        tag_keys: tuple[str, ...] | None = None,
        resource_arn: str | None = None,
    ) -> None:
        """Return if the caller may do ``action`` on ``repository`` (None: the registry), or
        on ``resource_arn``, another service's resource (a secret).

        Raises ApiError ``AccessDeniedException`` with AWS's text when the authorizer refuses;
        other domain exceptions from the authorizer (Unauthenticated) propagate.
        """
        # The resource ARN needs the region, which the API knows; so the text is built here
        # unless the authorizer already wrote it for this very request (the policy engine's
        # adds AWS's reason: "because no identity-based policy allows ...").
        request = AccessRequest(
            principal=self.principal,
            action=action,
            registry_id=self.registry_id,
            repository=repository,
            # The signature was verified already; the authorizer needs only the conditions.
            credentials=Credentials(
                source_ip=self.source_ip, secure_transport=self.secure_transport
            ),
            request_tags=request_tags,
            tag_keys=tag_keys,
            resource_arn=resource_arn,
        )
        self.checks.append(str(action))
        try:
            await self.authorizer.authorize(request)
        except AccessDenied as denied:
            text = self._denial(action, resource_arn or repository)
            if denied.message.startswith(text):
                text = denied.message
            raise ApiError(ACCESS_DENIED, text) from None

    def _denial(self, action: Action | str, resource_or_repository: str | None) -> str:
        user = self.principal.arn or "anonymous"
        if resource_or_repository is None:
            resource = "*"
        elif resource_or_repository.startswith("arn:"):
            resource = resource_or_repository
        else:
            resource = self.repository_arn(resource_or_repository)
        return f"User: {user} is not authorized to perform: {action} on resource: {resource}"
