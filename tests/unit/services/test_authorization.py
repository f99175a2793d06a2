"""The authorizer: which policies take part in a decision, and the context keys it supplies.

The policy engine's own rules are tested in tests/unit/iam/test_policy.py; here the policies
come from a table in memory, so each case states exactly what is attached where.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from moorage.domain.errors import AccessDenied, Unauthenticated
from moorage.iam.actions import Action, account_root_arn, user_arn
from moorage.iam.policy import Policy, parse_policy
from moorage.ports.access import AccessRequest, Credentials, Principal
from moorage.services.authorization import PolicyAuthorizer, ResourcePolicies

OWNER = "111111111111"
OTHER = "222222222222"
REGION = "eu-west-1"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

ALICE = Principal(OWNER, user_arn(OWNER, "alice"), "AIDAALICE0000000000", "alice", "AKIAALICE")
MALLORY = Principal(OTHER, user_arn(OTHER, "mallory"), "AIDAMALLORY00000000", "mallory")
ROOT = Principal(OWNER, account_root_arn(OWNER))
REPO_ARN = f"arn:aws:ecr:{REGION}:{OWNER}:repository/team/app"


def policy(*statements: dict[str, object], kind: str = "identity") -> Policy:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, kind="identity" if kind == "identity" else "resource")


def allow(action: str = "ecr:*", resource: str = "*", **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def grant(principal: object, action: str = "ecr:*", **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, **extra}


@dataclass
class Policies:
    identity: dict[str, list[Policy]] = field(default_factory=dict)
    repository: Policy | None = None
    registry: Policy | None = None
    scope: str = "V2"
    tags: Mapping[str, str] = field(default_factory=dict)

    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        return self.identity.get(principal.arn or "", [])

    async def resource_policies(self, registry_id: str, repository: str | None) -> ResourcePolicies:
        return ResourcePolicies(
            repository_policy=self.repository if repository is not None else None,
            registry_policy=self.registry,
            registry_policy_scope=self.scope,
            repository_tags=self.tags if repository is not None else {},
        )

    async def resource_policies_many(
        self, registry_id: str, repositories: Sequence[str]
    ) -> Mapping[str, ResourcePolicies]:
        return {name: await self.resource_policies(registry_id, name) for name in repositories}


def authorizer(policies: Policies) -> PolicyAuthorizer:
    return PolicyAuthorizer(policies, lambda: NOW, REGION)


def ask(
    principal: Principal,
    action: str = Action.BATCH_GET_IMAGE,
    repository: str | None = "team/app",
    registry_id: str = OWNER,
    source_ip: str = "10.1.2.3",
    **extra: object,
) -> AccessRequest:
    return AccessRequest(
        principal=principal,
        action=action,
        registry_id=registry_id,
        repository=repository,
        credentials=Credentials(source_ip=source_ip),
        **extra,  # type: ignore[arg-type]
    )


async def test_anonymous_callers_must_authenticate() -> None:
    with pytest.raises(Unauthenticated):
        await authorizer(Policies()).authorize(ask(Principal(OWNER)))


async def test_a_user_without_policies_is_denied_with_aws_wording() -> None:
    with pytest.raises(AccessDenied) as caught:
        await authorizer(Policies()).authorize(ask(ALICE))
    assert caught.value.message == (
        f"User: {ALICE.arn} is not authorized to perform: ecr:BatchGetImage on resource: "
        f"{REPO_ARN} because no identity-based policy allows the ecr:BatchGetImage action"
    )


async def test_an_identity_policy_allows_within_the_account() -> None:
    policies = Policies(identity={ALICE.arn or "": [policy(allow(resource=REPO_ARN))]})
    await authorizer(policies).authorize(ask(ALICE))


async def test_identity_policy_resources_are_repository_arns_of_the_configured_region() -> None:
    elsewhere = REPO_ARN.replace(REGION, "us-east-1")
    policies = Policies(identity={ALICE.arn or "": [policy(allow(resource=elsewhere))]})
    with pytest.raises(AccessDenied):
        await authorizer(policies).authorize(ask(ALICE))


async def test_a_repository_policy_naming_the_user_allows_within_the_account() -> None:
    policies = Policies(repository=policy(grant({"AWS": ALICE.arn}), kind="resource"))
    await authorizer(policies).authorize(ask(ALICE))


async def test_an_explicit_deny_in_the_repository_policy_beats_an_identity_allow() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchGetImage"}
    policies = Policies(
        identity={ALICE.arn or "": [policy(allow())]},
        repository=policy(deny, kind="resource"),
    )
    with pytest.raises(AccessDenied) as caught:
        await authorizer(policies).authorize(ask(ALICE))
    assert caught.value.message.endswith("with an explicit deny")


async def test_the_account_root_may_do_anything_in_its_account_but_not_elsewhere() -> None:
    await authorizer(Policies()).authorize(ask(ROOT))
    with pytest.raises(AccessDenied):
        await authorizer(Policies()).authorize(ask(ROOT, registry_id=OTHER))


async def test_cross_account_access_needs_both_the_repository_and_the_identity_policy() -> None:
    repository_grant = policy(grant({"AWS": OTHER}), kind="resource")
    identity_allow = {MALLORY.arn or "": [policy(allow())]}
    with pytest.raises(AccessDenied) as caught:
        await authorizer(Policies(identity=identity_allow)).authorize(ask(MALLORY))
    assert "no resource-based policy allows" in caught.value.message
    with pytest.raises(AccessDenied):
        await authorizer(Policies(repository=repository_grant)).authorize(ask(MALLORY))
    both = Policies(identity=identity_allow, repository=repository_grant)
    await authorizer(both).authorize(ask(MALLORY))


async def test_a_v2_registry_policy_grants_every_action_it_names() -> None:
    registry = policy(
        grant({"AWS": OTHER}, Resource=f"arn:aws:ecr:{REGION}:{OWNER}:repository/*"),
        kind="resource",
    )
    policies = Policies(identity={MALLORY.arn or "": [policy(allow())]}, registry=registry)
    await authorizer(policies).authorize(ask(MALLORY))


async def test_a_v1_registry_policy_governs_only_replication_import_and_creation() -> None:
    registry = policy(
        grant({"AWS": OTHER}, Resource=f"arn:aws:ecr:{REGION}:{OWNER}:repository/*"),
        kind="resource",
    )
    policies = Policies(
        identity={MALLORY.arn or "": [policy(allow())]}, registry=registry, scope="V1"
    )
    with pytest.raises(AccessDenied):
        await authorizer(policies).authorize(ask(MALLORY))
    await authorizer(policies).authorize(ask(MALLORY, action="ecr:CreateRepository"))


async def test_registry_wide_actions_are_asked_on_star() -> None:
    only_repos = Policies(identity={ALICE.arn or "": [policy(allow(resource=REPO_ARN))]})
    with pytest.raises(AccessDenied) as caught:
        await authorizer(only_repos).authorize(
            ask(ALICE, action=Action.GET_AUTHORIZATION_TOKEN, repository=None)
        )
    assert "on resource: * because" in caught.value.message


async def test_only_identity_policies_grant_the_authorization_token() -> None:
    # ECR: GetAuthorizationToken "must be granted in an identity policy"; a repository or
    # registry policy naming the user does not count, and neither does a deny in one.
    actions = ["ecr:GetAuthorizationToken", "ecr:DescribeImages"]
    resource_side = policy({**grant({"AWS": ALICE.arn}), "Action": actions}, kind="resource")
    deny = policy(
        {**grant({"AWS": ALICE.arn}, "ecr:GetAuthorizationToken"), "Effect": "Deny"},
        kind="resource",
    )
    token = ask(ALICE, action=Action.GET_AUTHORIZATION_TOKEN, repository=None)
    for granting in (
        Policies(registry=resource_side),
        Policies(repository=resource_side, registry=resource_side),
    ):
        with pytest.raises(AccessDenied):
            await authorizer(granting).authorize(token)
        # The same policies do grant what they may.
        await authorizer(granting).authorize(ask(ALICE, action=Action.DESCRIBE_IMAGES))
    allowed = Policies(identity={ALICE.arn or "": [policy(allow())]}, registry=deny)
    await authorizer(allowed).authorize(token)


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True),
        ({"IpAddress": {"aws:SourceIp": "192.168.0.0/16"}}, False),
        ({"StringEquals": {"aws:username": "alice"}}, True),
        ({"StringEquals": {"aws:userid": "AIDAALICE0000000000"}}, True),
        ({"StringEquals": {"aws:PrincipalAccount": OWNER}}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, False),
        ({"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}, True),
        ({"NumericGreaterThan": {"aws:EpochTime": str(int(NOW.timestamp()))}}, False),
        ({"StringEquals": {"aws:ResourceTag/team": "web"}}, True),
        ({"StringEquals": {"ecr:ResourceTag/team": "db"}}, False),
    ],
)
async def test_context_keys_reach_conditions(condition: object, allowed: bool) -> None:
    policies = Policies(
        identity={ALICE.arn or "": [policy(allow(Condition=condition))]},
        tags={"team": "web"},
    )
    if allowed:
        await authorizer(policies).authorize(ask(ALICE))
    else:
        with pytest.raises(AccessDenied):
            await authorizer(policies).authorize(ask(ALICE))


async def test_request_tags_and_tag_keys_reach_conditions() -> None:
    only_team_tags = allow(
        "ecr:CreateRepository",
        Condition={
            "StringEquals": {"aws:RequestTag/team": "web"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
        },
    )
    policies = Policies(identity={ALICE.arn or "": [policy(only_team_tags)]})
    create = "ecr:CreateRepository"
    await authorizer(policies).authorize(
        ask(ALICE, action=create, request_tags={"team": "web"}, tag_keys=("team",))
    )
    with pytest.raises(AccessDenied):
        await authorizer(policies).authorize(
            ask(
                ALICE,
                action=create,
                request_tags={"team": "web", "cost": "x"},
                tag_keys=("team", "cost"),
            )
        )


async def test_allowed_repositories_decides_each_name_as_authorize_would() -> None:
    only_team = policy(allow(resource=f"arn:aws:ecr:{REGION}:{OWNER}:repository/team/*"))
    policies = Policies(identity={ALICE.arn or "": [only_team]})
    names = ["other/app", "team/app", "team/db", "teamx"]
    allowed = await authorizer(policies).allowed_repositories(ask(ALICE), names)
    assert allowed == ["team/app", "team/db"]
    for name in names:
        request = ask(ALICE, repository=name)
        if name in allowed:
            await authorizer(policies).authorize(request)
        else:
            with pytest.raises(AccessDenied):
                await authorizer(policies).authorize(request)
    with pytest.raises(Unauthenticated):
        await authorizer(policies).allowed_repositories(ask(Principal(OWNER)), names)
