"""Authorization with AWS's rules: every request is decided by the IAM policy engine.

For one :class:`AccessRequest` the authorizer gathers

- the caller's identity policies (an account's root user is allowed everything in its own
  account, as in AWS, so it gets an allow-all identity policy);
- the resource policies: the repository's policy, and the registry policy when the account's
  ``REGISTRY_POLICY_SCOPE`` makes it apply to the action (``V2``: every ECR action; ``V1``:
  only replication, pull-through import and repository creation); none for
  ``ecr:GetAuthorizationToken``, which only identity policies grant;
- the condition keys of the request (``aws:SourceIp``, ``aws:userid``, ``aws:CurrentTime``,
  ``aws:RequestTag/*``, ``aws:ResourceTag/*`` and ``ecr:ResourceTag/*`` ...),

and asks :func:`moorage.iam.policy.evaluate`: an explicit deny wins, then the same account
needs one allow (identity or resource policy), another account needs both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from moorage.domain.errors import AccessDenied, Unauthenticated
from moorage.iam.actions import PARTITION
from moorage.iam.actions import repository_arn as repository_arn_of
from moorage.iam.policy import (
    AuthorizationRequest,
    Decision,
    Outcome,
    Policy,
    evaluate,
    parse_policy,
)
from moorage.ports.access import AccessRequest, Principal
from moorage.ports.clock import Clock

# What a registry policy governs under REGISTRY_POLICY_SCOPE V1 (ECR user guide, "Private
# registry permissions"); under V2 it is evaluated for every ECR action.
V1_REGISTRY_POLICY_ACTIONS = frozenset(
    {"ecr:ReplicateImage", "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"}
)

# Actions only the caller's identity policies can allow: no repository or registry policy
# takes part (ECR user guide: GetAuthorizationToken "must be granted in an identity policy").
IDENTITY_ONLY_ACTIONS = frozenset({"ecr:GetAuthorizationToken"})

ALLOW_ALL = parse_policy(
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
    kind="identity",
)


@dataclass(frozen=True)
class ResourcePolicies:
    """What guards a resource: its policies and the tags its conditions may test."""

    repository_policy: Policy | None = None
    registry_policy: Policy | None = None
    registry_policy_scope: str = "V2"
    repository_tags: Mapping[str, str] = field(default_factory=dict)


class PolicySource(Protocol):
    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        """The policies attached to the caller (none for an unknown user)."""
        ...

    async def resource_policies(self, registry_id: str, repository: str | None) -> ResourcePolicies:
        """The policies of the registry and, when named, of one repository (absent: none)."""
        ...

    async def resource_policies_many(
        self, registry_id: str, repositories: Sequence[str]
    ) -> Mapping[str, ResourcePolicies]:
        """:meth:`resource_policies` of many repositories at once, keyed by name."""
        ...


def is_account_root(principal: Principal) -> bool:
    return principal.arn is not None and principal.arn.endswith(":root")


class PolicyAuthorizer:
    """An :class:`~moorage.ports.access.Authorizer` backed by the IAM policy engine."""

    def __init__(
        self,
        policies: PolicySource,
        clock: Clock,
        region: str,
        *,
        repository_arn: Callable[[str, str], str] | None = None,
    ) -> None:
        """``repository_arn(registry_id, name)``: the ARN policies name a repository by
        (ECR's regional ARN by default; ECR Public's has no region)."""
        self._policies = policies
        self._clock = clock
        self._region = region
        self._repository_arn = repository_arn or (
            lambda registry_id, name: repository_arn_of(region, registry_id, name, PARTITION)
        )

    async def authorize(self, request: AccessRequest) -> None:
        """Return when allowed. Raises Unauthenticated for an anonymous caller and
        AccessDenied, with AWS's wording, when the policies do not allow the action."""
        caller = request.principal
        if caller.arn is None:
            raise Unauthenticated("authentication required")
        decision = await self.decide(request)
        if not decision.allowed:
            raise AccessDenied(denial_message(request, self.resource_of(request), decision))

    async def allowed_repositories(
        self, request: AccessRequest, repositories: Sequence[str]
    ) -> list[str]:
        """Those of ``repositories`` (in order) on which the caller may do ``request.action``;
        ``request.repository`` is ignored. Raises Unauthenticated for an anonymous caller.

        One read of the caller's policies and one of the repositories' guards, whatever the
        number of names: the catalog asks this about a page at a time.
        """
        caller = request.principal
        if caller.arn is None:
            raise Unauthenticated("authentication required")
        identity = await self._identity(caller)
        guards = await self._policies.resource_policies_many(request.registry_id, repositories)
        context = self._request_context(request)  # the same for every name but its tags
        return [
            name
            for name in repositories
            if self._evaluate(request, name, identity, guards[name], context).allowed
        ]

    async def decide(self, request: AccessRequest) -> Decision:
        identity = await self._identity(request.principal)
        context = self._request_context(request)
        if request.resource_arn is not None:
            # Another service's resource: no ECR repository or registry policy guards it.
            return self._evaluate(request, None, identity, ResourcePolicies(), context)
        guards = await self._policies.resource_policies(request.registry_id, request.repository)
        return self._evaluate(request, request.repository, identity, guards, context)

    async def _identity(self, caller: Principal) -> Sequence[Policy]:
        if is_account_root(caller):
            return [ALLOW_ALL]
        return await self._policies.identity_policies(caller)

    def _evaluate(
        self,
        request: AccessRequest,
        repository: str | None,
        identity: Sequence[Policy],
        guards: ResourcePolicies,
        context: Mapping[str, str | list[str]],
    ) -> Decision:
        """Decide ``request`` on ``repository`` (which stands for ``request.repository``)."""
        caller = request.principal
        assert caller.arn is not None
        resource = request.resource_arn or self._resource(request.registry_id, repository)
        resource_side = [p for p in (guards.repository_policy,) if p is not None]
        if str(request.action) in IDENTITY_ONLY_ACTIONS:
            resource_side = []
        elif guards.registry_policy is not None and (
            guards.registry_policy_scope != "V1" or request.action in V1_REGISTRY_POLICY_ACTIONS
        ):
            resource_side.append(guards.registry_policy)
        return evaluate(
            AuthorizationRequest(
                principal_arn=caller.arn,
                principal_account=caller.registry_id,
                action=str(request.action),
                resource=resource,
                context=_with_resource_tags(context, guards.repository_tags),
            ),
            identity,
            resource_side,
            request.registry_id,
        )

    def resource_of(self, request: AccessRequest) -> str:
        return request.resource_arn or self._resource(request.registry_id, request.repository)

    def _resource(self, registry_id: str, repository: str | None) -> str:
        if repository is None:
            return "*"
        return self._repository_arn(registry_id, repository)

    def _request_context(self, request: AccessRequest) -> dict[str, str | list[str]]:
        """The condition keys of the request, but for the resource's tags."""
        caller = request.principal
        now = self._clock()
        credentials = request.credentials
        context: dict[str, str | list[str]] = {
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
            "aws:SecureTransport": "true" if credentials.secure_transport else "false",
            "aws:PrincipalType": "Account" if is_account_root(caller) else "User",
        }
        if credentials.source_ip:
            context["aws:SourceIp"] = credentials.source_ip
        if caller.user_id:
            context["aws:userid"] = caller.user_id
        if caller.username:
            context["aws:username"] = caller.username
        if request.request_tags is not None:
            for key, value in request.request_tags.items():
                context[f"aws:RequestTag/{key}"] = value
        if request.tag_keys is not None:
            context["aws:TagKeys"] = list(request.tag_keys)
        return context


def _with_resource_tags(
    context: Mapping[str, str | list[str]], tags: Mapping[str, str]
) -> Mapping[str, str | list[str]]:
    if not tags:
        return context
    tagged = dict(context)
    for key, value in tags.items():
        tagged[f"aws:ResourceTag/{key}"] = value
        tagged[f"ecr:ResourceTag/{key}"] = value
    return tagged


def denial_message(request: AccessRequest, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied text, with the reason AWS gives since 2021."""
    caller = request.principal
    action = str(request.action)
    base = f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource}"
    if decision.outcome is Outcome.EXPLICIT_DENY:
        return f"{base} with an explicit deny"
    if caller.registry_id != request.registry_id:
        return f"{base} because no resource-based policy allows the {action} action"
    return f"{base} because no identity-based policy allows the {action} action"


class StoredPolicies:
    """The :class:`PolicySource` over the registry's own records.

    Policy documents are parsed once per distinct text (they were validated when set), so a
    request costs the reads, not the parsing.
    """

    def __init__(self, identities: IdentityPolicies, registry: RegistryPolicyReader) -> None:
        self._identities = identities
        self._registry = registry

    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        return await self._identities.identity_policies(principal)

    async def resource_policies(self, registry_id: str, repository: str | None) -> ResourcePolicies:
        return _guards(await self._registry.policies_for(registry_id, repository))

    async def resource_policies_many(
        self, registry_id: str, repositories: Sequence[str]
    ) -> Mapping[str, ResourcePolicies]:
        texts = await self._registry.policies_for_many(registry_id, repositories)
        return {name: _guards(text) for name, text in texts.items()}


class IdentityPolicies(Protocol):
    async def identity_policies(self, principal: Principal) -> Sequence[Policy]: ...


class PolicyTexts(Protocol):
    @property
    def repository_policy(self) -> str | None: ...
    @property
    def registry_policy(self) -> str | None: ...
    @property
    def registry_policy_scope(self) -> str: ...
    @property
    def repository_tags(self) -> Mapping[str, str]: ...


class RegistryPolicyReader(Protocol):
    async def policies_for(self, registry_id: str, repository_name: str | None) -> PolicyTexts: ...

    async def policies_for_many(
        self, registry_id: str, repository_names: Sequence[str]
    ) -> Mapping[str, PolicyTexts]: ...


def _guards(texts: PolicyTexts) -> ResourcePolicies:
    return ResourcePolicies(
        repository_policy=_parsed(texts.repository_policy),
        registry_policy=_parsed(texts.registry_policy),
        registry_policy_scope=str(texts.registry_policy_scope),
        repository_tags=texts.repository_tags,
    )


@lru_cache(maxsize=1024)
def _parse_resource_policy(text: str) -> Policy:
    return parse_policy(text, kind="resource")


def _parsed(text: str | None) -> Policy | None:
    return None if text is None else _parse_resource_policy(text)
