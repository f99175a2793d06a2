"""The IAM policy engine: grammar, matching, condition operators and evaluation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moorage.iam.patterns import expand, wildcard_match
from moorage.iam.policy import (
    AuthorizationRequest,
    Decision,
    Outcome,
    Policy,
    PolicyInvalid,
    evaluate,
    parse_policy,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{OTHER}:user/bob"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app"
PULL = "ecr:BatchGetImage"


def doc(*statements: dict[str, Any], version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def identity(*statements: dict[str, Any], version: str = "2012-10-17") -> Policy:
    return parse_policy(doc(*statements, version=version), kind="identity")


def resource(*statements: dict[str, Any]) -> Policy:
    return parse_policy(doc(*statements), kind="resource")


def allow(action: Any = PULL, res: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def deny(action: Any = PULL, res: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": res, **extra}


def request(
    principal: str = ALICE,
    account: str = ACCOUNT,
    action: str = PULL,
    res: str = REPO,
    **context: str | list[str],
) -> AuthorizationRequest:
    return AuthorizationRequest(principal, account, action, res, context)


def decide(
    req: AuthorizationRequest,
    identities: list[Policy] | None = None,
    repo_policy: Policy | None = None,
    resource_account: str = ACCOUNT,
) -> Outcome:
    return evaluate(req, identities or [], repo_policy, resource_account).outcome


def condition_holds(block: dict[str, Any], **context: str | list[str]) -> bool:
    policy = identity(allow(Condition=block))
    return decide(AuthorizationRequest(ALICE, ACCOUNT, PULL, REPO, context), [policy]) is (
        Outcome.ALLOW
    )


# --- grammar ---------------------------------------------------------------------------------

VALID_STATEMENT = {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"Version": "2012-10-17"}), "needs a Statement"),
        (json.dumps({"Version": "2020-01-01", "Statement": VALID_STATEMENT}), "Version"),
        (json.dumps({"Statement": VALID_STATEMENT, "Extra": 1}), "unknown policy element"),
        (json.dumps({"Statement": []}), "non-empty list"),
        (json.dumps({"Statement": "x"}), "non-empty list"),
        (json.dumps({"Statement": ["x"]}), "must be an object"),
        (json.dumps({"Statement": VALID_STATEMENT, "Id": 5}), "Id must be a string"),
        ('{"Statement": {"Effect": "Allow", "Effect": "Deny"}}', "duplicate key"),
        ('{"Statement": {"Effect": "Allow", "Action": "ecr:*", "Resource": NaN}}', "NaN"),
        ("[" * 10_000 + "]" * 10_000, "nested"),
        (doc({**VALID_STATEMENT, "Sid": 1}), "Sid must be a string"),
        (doc({**VALID_STATEMENT, "Effect": "allow"}), "Effect"),
        (doc({"Action": "ecr:*", "Resource": "*"}), "Effect"),
        (doc({"Effect": "Allow", "Resource": "*"}), "needs Action or NotAction"),
        (doc({**VALID_STATEMENT, "NotAction": "ecr:*"}), "both Action and NotAction"),
        (doc({**VALID_STATEMENT, "Action": []}), "Action must be"),
        (doc({**VALID_STATEMENT, "Action": ["ecr:*", 3]}), "Action must be"),
        (doc({**VALID_STATEMENT, "Action": "BatchGetImage"}), "invalid action"),
        (doc({"Effect": "Allow", "Action": "ecr:*"}), "needs Resource or NotResource"),
        (doc({**VALID_STATEMENT, "NotResource": "*"}), "both Resource and NotResource"),
        (doc({**VALID_STATEMENT, "Resource": "repository/x"}), "invalid resource"),
        (doc({**VALID_STATEMENT, "Principal": "*"}), "identity policies cannot"),
        (doc({**VALID_STATEMENT, "NotPrincipal": {"AWS": ACCOUNT}}), "identity policies cannot"),
        (doc({**VALID_STATEMENT, "Bogus": 1}), "unknown statement element"),
        (doc({**VALID_STATEMENT, "Condition": []}), "Condition must be"),
        (doc({**VALID_STATEMENT, "Condition": {"StringEqualz": {"k": "v"}}}), "unknown"),
        (doc({**VALID_STATEMENT, "Condition": {"ForSomeValues:StringEquals": {"k": "v"}}}), "set"),
        (doc({**VALID_STATEMENT, "Condition": {"StringEquals": {}}}), "object of keys"),
        (doc({**VALID_STATEMENT, "Condition": {"StringEquals": {"k": []}}}), "at least one"),
        (doc({**VALID_STATEMENT, "Condition": {"StringEquals": {"k": {"a": 1}}}}), "strings"),
        (doc({**VALID_STATEMENT, "Condition": {"NumericLessThan": {"k": "ten"}}}), "a number"),
        (doc({**VALID_STATEMENT, "Condition": {"DateLessThan": {"k": "soon"}}}), "a date"),
        (doc({**VALID_STATEMENT, "Condition": {"Bool": {"k": "yes"}}}), "true or false"),
        (doc({**VALID_STATEMENT, "Condition": {"IpAddress": {"k": "10.0.0.0/33"}}}), "CIDR"),
        (doc({**VALID_STATEMENT, "Condition": {"Null": {"k": "maybe"}}}), "true or false"),
        (doc({**VALID_STATEMENT, "Condition": {"NullIfExists": {"k": "true"}}}), "Null"),
        (doc({**VALID_STATEMENT, "Condition": {"ForAnyValue:Null": {"k": "true"}}}), "Null"),
    ],
)
def test_identity_policy_grammar_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        parse_policy(text, kind="identity")


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ({"Effect": "Allow", "Action": PULL}, "needs Principal or NotPrincipal"),
        ({"Effect": "Allow", "Action": PULL, "Principal": "*", "NotPrincipal": "*"}, "both"),
        ({"Effect": "Allow", "Action": PULL, "Principal": "everyone"}, "Principal must be"),
        ({"Effect": "Allow", "Action": PULL, "Principal": {}}, "Principal must be"),
        ({"Effect": "Allow", "Action": PULL, "Principal": {"IAM": "*"}}, "principal type"),
        ({"Effect": "Allow", "Action": PULL, "Principal": {"AWS": "alice"}}, "AWS principal"),
        ({"Effect": "Allow", "Action": PULL, "Principal": {"AWS": "1234"}}, "AWS principal"),
        ({"Effect": "Allow", "Action": PULL, "Principal": {"AWS": []}}, "AWS must be"),
        # Only "*" on its own may be a wildcard principal.
        ({"Effect": "Allow", "Action": PULL, "Principal": {"AWS": f"{ALICE}*"}}, "AWS principal"),
        (
            {"Effect": "Allow", "Action": PULL, "Principal": {"AWS": "arn:aws:s3:::bucket"}},
            "AWS principal",
        ),
    ],
)
def test_resource_policy_grammar_errors(statement: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        parse_policy(doc(statement), kind="resource")


def test_resource_policy_may_omit_resource_unless_required() -> None:
    text = doc({"Effect": "Allow", "Action": PULL, "Principal": "*"})
    assert parse_policy(text, kind="resource").statements[0].resources is None
    with pytest.raises(PolicyInvalid, match="needs Resource"):
        parse_policy(text, kind="resource", require_resource=True)


def test_identity_policy_resource_requirement_can_be_relaxed() -> None:
    text = doc({"Effect": "Allow", "Action": PULL})
    assert parse_policy(text, kind="identity", require_resource=False).statements[0].sid is None


def test_valid_policy_is_parsed_into_its_parts() -> None:
    text = json.dumps(
        {
            "Version": "2008-10-17",
            "Id": "repo-policy",
            "Statement": {
                "Sid": "Pull",
                "Effect": "Deny",
                "NotPrincipal": {"AWS": [ACCOUNT, ALICE], "Service": "ecr.amazonaws.com"},
                "NotAction": ["ecr:Put*"],
                "NotResource": REPO,
                "Condition": {"ForAllValues:StringLikeIfExists": {"AWS:TagKeys": ["a", True, 1]}},
            },
        }
    )
    policy = parse_policy(text, kind="resource")
    assert (policy.version, policy.id) == ("2008-10-17", "repo-policy")
    (statement,) = policy.statements
    assert statement.sid == "Pull"
    assert statement.actions == ("ecr:Put*",)
    assert statement.actions_negated
    assert statement.resources_negated
    assert statement.principals_negated
    assert statement.principals is not None
    assert statement.principals.aws == (ACCOUNT, ALICE)
    assert statement.principals.service == ("ecr.amazonaws.com",)
    (condition,) = statement.conditions
    assert condition.key == "aws:tagkeys"
    assert condition.values == ("a", "true", "1")
    assert condition.if_exists


def test_missing_version_defaults_to_2008() -> None:
    policy = parse_policy(json.dumps({"Statement": VALID_STATEMENT}), kind="identity")
    assert policy.version == "2008-10-17"
    assert not policy.uses_variables


# --- wildcard matching -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "candidate", "ignore_case", "expected"),
    [
        ("*", "", False, True),
        ("*", "anything:at/all", False, True),
        ("ecr:Batch*", "ecr:BatchGetImage", True, True),
        ("ecr:batch*", "ECR:BATCHGETIMAGE", True, True),
        ("ecr:batch*", "ecr:BatchGetImage", False, False),
        ("ecr:*", "ecrpublic:GetImage", True, False),
        ("ecr:Get?mage", "ecr:GetImage", True, True),
        ("ecr:Get?mage", "ecr:Getmage", True, False),
        ("ecr:Get?mage", "ecr:GetIIImage", True, False),
        ("a.b", "axb", False, False),  # regex metacharacters are literal
        ("a+b", "a+b", False, True),
        ("repository/prod-*", "repository/prod-a/b", False, True),  # * crosses "/"
        ("*:repository/x", "arn:aws:ecr:r:1:repository/x", False, True),  # and ":"
        ("Repository/x", "repository/x", False, False),
        ("ab", "abc", False, False),  # whole-string match
        ("abc", "ab", False, False),
    ],
)
def test_wildcard_match(pattern: str, candidate: str, ignore_case: bool, expected: bool) -> None:
    assert wildcard_match(pattern, candidate, ignore_case=ignore_case) is expected


def test_variables_substitute_literally_and_support_defaults_and_escapes() -> None:
    variables = {"aws:username": ("a*",)}
    assert expand("home/${aws:username}", variables) == "home/a*"
    assert wildcard_match("home/${aws:username}", "home/a*", variables)
    assert not wildcard_match("home/${aws:username}", "home/abc", variables)  # literal *
    assert expand("${aws:userid, 'anon'}", variables) == "anon"
    assert expand("${aws:userid}", variables) is None
    assert expand("x${*}${?}${$}", variables) == "x*?$"
    assert wildcard_match("${*}", "*", variables)
    assert not wildcard_match("${*}", "z", variables)
    assert expand("${aws:username}", None) == "${aws:username}"  # 2008-10-17: no variables


def test_multivalued_key_is_not_a_variable() -> None:
    assert expand("${aws:tagkeys}", {"aws:tagkeys": ("a", "b")}) is None


# --- action, resource and principal matching in evaluation ------------------------------------


@pytest.mark.parametrize(
    ("actions", "requested", "expected"),
    [
        ("*", PULL, Outcome.ALLOW),
        ("ecr:*", PULL, Outcome.ALLOW),
        ("ECR:batch*", PULL, Outcome.ALLOW),
        (["ecr:PutImage", "ecr:BatchGetImage"], PULL, Outcome.ALLOW),
        ("ecr:Batch*", "ecr:PutImage", Outcome.IMPLICIT_DENY),
        ("s3:*", PULL, Outcome.IMPLICIT_DENY),
    ],
)
def test_action_matching(actions: Any, requested: str, expected: Outcome) -> None:
    assert decide(request(action=requested), [identity(allow(actions))]) is expected


@pytest.mark.parametrize(
    ("resources", "requested", "expected"),
    [
        ("*", REPO, Outcome.ALLOW),
        (f"arn:aws:ecr:*:{ACCOUNT}:repository/team/*", REPO, Outcome.ALLOW),
        (f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/ap?", REPO, Outcome.ALLOW),
        (f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/Team/app", REPO, Outcome.IMPLICIT_DENY),
        (f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team", REPO, Outcome.IMPLICIT_DENY),
        # Registry-level actions ask for "*": a repository ARN does not cover them.
        (REPO, "*", Outcome.IMPLICIT_DENY),
        ("*", "*", Outcome.ALLOW),
    ],
)
def test_resource_matching(resources: Any, requested: str, expected: Outcome) -> None:
    assert decide(request(res=requested), [identity(allow(res=resources))]) is expected


def test_not_action_allows_everything_else() -> None:
    policy = identity({"Effect": "Allow", "NotAction": "ecr:Delete*", "Resource": "*"})
    assert decide(request(action="ecr:PutImage"), [policy]) is Outcome.ALLOW
    assert decide(request(action="ecr:DeleteRepository"), [policy]) is Outcome.IMPLICIT_DENY


def test_not_resource_deny_protects_all_but_listed() -> None:
    allowed = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/sandbox/*"
    policy = identity(allow("ecr:*"), {"Effect": "Deny", "Action": "ecr:*", "NotResource": allowed})
    sandbox = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/sandbox/x"
    assert decide(request(res=sandbox), [policy]) is Outcome.ALLOW
    assert decide(request(res=REPO), [policy]) is Outcome.EXPLICIT_DENY


def test_resource_variable_scopes_each_user_to_their_own_repositories() -> None:
    home = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/home/${{aws:username}}/*"
    policy = identity(allow(res=home))
    mine = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/home/alice/x"
    theirs = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/home/carol/x"
    assert decide(request(res=mine, **{"aws:username": "alice"}), [policy]) is Outcome.ALLOW
    assert decide(request(res=theirs, **{"aws:username": "alice"}), [policy]) is (
        Outcome.IMPLICIT_DENY
    )
    # An unresolvable variable makes the resource match nothing.
    assert decide(request(res=mine), [policy]) is Outcome.IMPLICIT_DENY


def test_variables_are_literal_text_in_2008_policies() -> None:
    home = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/home/${{aws:username}}"
    policy = identity(allow(res=home), version="2008-10-17")
    literal = request(res=home, **{"aws:username": "alice"})
    substituted = request(res=home.replace("${aws:username}", "alice"), **{"aws:username": "alice"})
    assert decide(literal, [policy]) is Outcome.ALLOW
    assert decide(substituted, [policy]) is Outcome.IMPLICIT_DENY


def test_principal_account_variable_defaults_from_the_request() -> None:
    policy = identity(allow(res="arn:aws:ecr:*:${aws:PrincipalAccount}:repository/*"))
    assert decide(request(), [policy]) is Outcome.ALLOW
    foreign = f"arn:aws:ecr:us-east-1:{OTHER}:repository/x"
    assert decide(request(res=foreign), [policy], resource_account=OTHER) is (Outcome.IMPLICIT_DENY)


def _repo_policy(principal: Any, negated: bool = False, effect: str = "Allow") -> Policy:
    element = "NotPrincipal" if negated else "Principal"
    return resource({"Sid": "Repo", "Effect": effect, "Action": "ecr:*", element: principal})


ROLE = f"arn:aws:iam::{OTHER}:role/ci/builder"
SESSION = f"arn:aws:sts::{OTHER}:assumed-role/builder/job-42"


@pytest.mark.parametrize(
    ("principal", "caller", "caller_account", "matches"),
    [
        ("*", BOB, OTHER, True),
        ({"AWS": "*"}, BOB, OTHER, True),
        ({"AWS": OTHER}, BOB, OTHER, True),
        ({"AWS": f"arn:aws:iam::{OTHER}:root"}, BOB, OTHER, True),
        ({"AWS": f"arn:aws:iam::{OTHER}:root"}, ALICE, ACCOUNT, False),
        ({"AWS": [ALICE, BOB]}, BOB, OTHER, True),
        ({"AWS": f"arn:aws:iam::{OTHER}:user/bobby"}, BOB, OTHER, False),
        ({"AWS": ROLE}, SESSION, OTHER, True),  # a role names its sessions
        ({"AWS": f"arn:aws:iam::{OTHER}:role/other"}, SESSION, OTHER, False),
        ({"Service": "replication.ecr.amazonaws.com"}, "replication.ecr.amazonaws.com", "", True),
        ({"Service": "replication.ecr.amazonaws.com"}, BOB, OTHER, False),
    ],
)
def test_principal_matching_cross_account(
    principal: Any, caller: str, caller_account: str, matches: bool
) -> None:
    # The repository lives in a third account, so every caller here is cross-account and the
    # repository policy must name them.
    any_identity = identity(allow("ecr:*"))
    req = request(principal=caller, account=caller_account)
    outcome = decide(req, [any_identity], _repo_policy(principal), resource_account="999988887777")
    assert outcome is (Outcome.ALLOW if matches else Outcome.IMPLICIT_DENY)


def test_not_principal_deny_applies_to_everyone_else() -> None:
    policy = resource(
        {"Sid": "All", "Effect": "Allow", "Action": "ecr:*", "Principal": {"AWS": ACCOUNT}},
        {"Sid": "OnlyAlice", "Effect": "Deny", "Action": "ecr:*", "NotPrincipal": {"AWS": ALICE}},
    )
    own_identity = identity(allow("ecr:*"))
    carol = f"arn:aws:iam::{ACCOUNT}:user/carol"
    assert decide(request(), [own_identity], policy) is Outcome.ALLOW
    result = evaluate(request(principal=carol), [own_identity], policy, ACCOUNT)
    assert result == Decision(Outcome.EXPLICIT_DENY, "OnlyAlice")


# --- evaluation ------------------------------------------------------------------------------


def test_no_policies_is_an_implicit_deny() -> None:
    assert evaluate(request(), [], None, ACCOUNT) == Decision(Outcome.IMPLICIT_DENY, None)


def test_explicit_deny_wins_over_allow_in_any_policy() -> None:
    allow_all = identity({**allow("ecr:*"), "Sid": "Everything"})
    deny_pull = identity({**deny(), "Sid": "NoPull"})
    decision = evaluate(request(), [allow_all, deny_pull], None, ACCOUNT)
    assert decision == Decision(Outcome.EXPLICIT_DENY, "NoPull")
    repo_deny = _repo_policy("*", effect="Deny")
    decision = evaluate(request(), [allow_all], repo_deny, ACCOUNT)
    assert decision == Decision(Outcome.EXPLICIT_DENY, "Repo")


def test_allow_reports_the_deciding_sid() -> None:
    policy = identity({**allow("s3:*"), "Sid": "Other"}, {**allow(), "Sid": "Pull"})
    assert evaluate(request(), [policy], None, ACCOUNT) == Decision(Outcome.ALLOW, "Pull")


@pytest.mark.parametrize(
    ("identity_allows", "repo_principal", "expected"),
    [
        (True, None, Outcome.ALLOW),
        (False, ALICE, Outcome.ALLOW),  # the repository policy alone suffices in the same account
        (False, "*", Outcome.ALLOW),
        (True, ALICE, Outcome.ALLOW),
        (False, None, Outcome.IMPLICIT_DENY),
        # Naming the account delegates to its identity policies: not enough on its own ...
        (False, ACCOUNT, Outcome.IMPLICIT_DENY),
        # ... but fine together with an identity allow.
        (True, ACCOUNT, Outcome.ALLOW),
    ],
)
def test_same_account_identity_or_resource_policy(
    identity_allows: bool, repo_principal: str | None, expected: Outcome
) -> None:
    identities = [identity(allow())] if identity_allows else []
    repo = None if repo_principal is None else _repo_policy({"AWS": repo_principal})
    assert decide(request(), identities, repo) is expected


@pytest.mark.parametrize(
    ("identity_allows", "repo_principal", "expected"),
    [
        (True, BOB, Outcome.ALLOW),
        (True, OTHER, Outcome.ALLOW),  # the account principal works across accounts
        (True, None, Outcome.IMPLICIT_DENY),  # default: only the owner's account has access
        (False, BOB, Outcome.IMPLICIT_DENY),  # the foreign identity policy must allow too
        (True, ALICE, Outcome.IMPLICIT_DENY),  # the repository policy names someone else
    ],
)
def test_cross_account_needs_both_policies(
    identity_allows: bool, repo_principal: str | None, expected: Outcome
) -> None:
    identities = [identity(allow("ecr:*"))] if identity_allows else []
    repo = None if repo_principal is None else _repo_policy({"AWS": repo_principal})
    assert decide(request(principal=BOB, account=OTHER), identities, repo) is expected


def test_cross_account_deny_in_foreign_identity_policy_wins() -> None:
    identities = [identity(allow("ecr:*"), {**deny(), "Sid": "NoPull"})]
    decision = evaluate(
        request(principal=BOB, account=OTHER), identities, _repo_policy("*"), ACCOUNT
    )
    assert decision == Decision(Outcome.EXPLICIT_DENY, "NoPull")


def test_resource_policy_resource_element_limits_the_statement() -> None:
    other_repo = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/other"
    repo = resource(
        {"Effect": "Allow", "Action": "ecr:*", "Principal": {"AWS": ALICE}, "Resource": other_repo}
    )
    assert decide(request(), [], repo) is Outcome.IMPLICIT_DENY
    assert decide(request(res=other_repo), [], repo) is Outcome.ALLOW


# Mirrors "Example identity-based and resource-based policy evaluation" on the AWS
# evaluation-logic page (Carlos, user carlossalazar), with ECR repositories in place of S3
# buckets: his policy allows listing everywhere and everything on his own repository, and
# denies anything whose name contains "log"; the repository policy of his own repository
# allows only him. Saving to the "...-logs" repository is denied by DenyS3Logs even though
# AllowS3Self-style grants exist; his own repository is allowed.
CARLOS = f"arn:aws:iam::{ACCOUNT}:user/carlossalazar"
CARLOS_REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/carlossalazar"
CARLOS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AllowListRead",
            "Effect": "Allow",
            "Action": ["ecr:DescribeRepositories", "ecr:DescribeRegistry"],
            "Resource": "arn:aws:ecr:*",
        },
        {
            "Sid": "AllowSelf",
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": [f"{CARLOS_REPO}/*", CARLOS_REPO],
        },
        {"Sid": "DenyLogs", "Effect": "Deny", "Action": "ecr:*", "Resource": "arn:aws:ecr:*log*"},
    ],
}
CARLOS_REPO_POLICY = {
    "Version": "2012-10-17",
    "Statement": {
        "Sid": "OnlyCarlos",
        "Effect": "Allow",
        "Principal": {"AWS": CARLOS},
        "Action": "ecr:*",
    },
}


def test_aws_example_carlos_logs_repository_is_explicitly_denied() -> None:
    policy = parse_policy(json.dumps(CARLOS_POLICY), kind="identity")
    logs_repo = f"{CARLOS_REPO}-logs"
    req = request(principal=CARLOS, action="ecr:PutImage", res=logs_repo)
    assert evaluate(req, [policy], None, ACCOUNT) == Decision(Outcome.EXPLICIT_DENY, "DenyLogs")


def test_aws_example_carlos_own_repository_is_allowed_by_either_policy() -> None:
    policy = parse_policy(json.dumps(CARLOS_POLICY), kind="identity")
    repo_policy = parse_policy(json.dumps(CARLOS_REPO_POLICY), kind="resource")
    req = request(principal=CARLOS, action="ecr:PutImage", res=CARLOS_REPO)
    assert evaluate(req, [policy], None, ACCOUNT) == Decision(Outcome.ALLOW, "AllowSelf")
    # "If either the identity-based policy or the resource-based policy within the same
    # account allows the request and the other doesn't, the request is still allowed."
    assert evaluate(req, [], repo_policy, ACCOUNT) == Decision(Outcome.ALLOW, "OnlyCarlos")
    someone = request(principal=ALICE, action="ecr:PutImage", res=CARLOS_REPO)
    assert decide(someone, [], repo_policy) is Outcome.IMPLICIT_DENY


# Mirrors the "Cross-account policy evaluation" page: account A's resource policy trusts
# account B, but a request from B is allowed only if B's own identity policy allows it too.
def test_aws_example_cross_account_requires_trust_on_both_sides() -> None:
    trust_b = _repo_policy({"AWS": OTHER})
    b_allows = identity(allow("ecr:*"))
    b_req = request(principal=BOB, account=OTHER)
    assert decide(b_req, [b_allows], trust_b) is Outcome.ALLOW
    assert decide(b_req, [], trust_b) is Outcome.IMPLICIT_DENY
    assert decide(b_req, [b_allows], None) is Outcome.IMPLICIT_DENY


# --- condition operators ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("StringEquals", "prod", "prod", True),
        ("StringEquals", "prod", "Prod", False),
        ("StringEquals", ["dev", "prod"], "prod", True),  # values are ORed
        ("StringNotEquals", "prod", "dev", True),
        ("StringNotEquals", ["dev", "prod"], "prod", False),  # must match none (NOR)
        ("StringNotEquals", ["dev", "prod"], "test", True),
        ("StringEqualsIgnoreCase", "PROD", "prod", True),
        ("StringNotEqualsIgnoreCase", ["Dev", "PROD"], "prod", False),
        ("StringNotEqualsIgnoreCase", ["Dev", "PROD"], "qa", True),
        ("StringLike", "pro?", "prod", True),
        ("StringLike", "p*", "prod", True),
        ("StringLike", "p*", "dev", False),
        ("StringNotLike", ["d*", "q*"], "prod", True),
        ("StringNotLike", ["d*", "p*"], "prod", False),
        ("BinaryEquals", "QmluYXJ5", "QmluYXJ5", True),
        ("NumericEquals", "10", "10.0", True),
        ("NumericNotEquals", ["1", "2"], "2", False),
        ("NumericNotEquals", ["1", "2"], "3", True),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "10", False),
        ("NumericGreaterThan", "10", "11", True),
        ("NumericGreaterThanEquals", "10", "10", True),
        ("NumericLessThan", "10", "nine", False),  # unreadable context value
        ("NumericNotEquals", "10", "nine", False),  # ... even for a negated operator
        ("DateEquals", "2024-01-01T00:00:00Z", "1704067200", True),  # ISO vs epoch
        ("DateNotEquals", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", True),
        ("DateLessThan", "2024-01-01T00:00:00Z", "2023-12-31T23:59:59Z", True),
        ("DateLessThan", "2024-01-01", "2024-01-01T00:00:00+00:00", False),  # naive is UTC
        ("DateLessThanEquals", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", True),
        ("DateGreaterThan", "1704067200", "2024-01-01T01:00:00+01:00", False),  # same instant
        ("DateGreaterThan", "1704067200", "2024-06-01T00:00:00Z", True),
        ("DateGreaterThanEquals", "2024-01-01T00:00:00Z", "2023-01-01T00:00:00Z", False),
        ("DateLessThan", "2024-01-01", "yesterday", False),
        ("Bool", "true", "true", True),
        ("Bool", "true", "false", False),
        ("Bool", "false", "FALSE", True),
        ("Bool", "true", "yes", False),
        ("ArnEquals", REPO, REPO, True),
        ("ArnLike", f"arn:aws:ecr:*:{ACCOUNT}:repository/team/*", REPO, True),
        ("ArnLike", "arn:aws:ecr:*:*:repository/other/*", REPO, False),
        ("ArnLike", "arn:aws:ecr:*", REPO, False),  # six parts are compared one by one
        ("ArnLike", "arn:aws:ecr:*:*:*", "not-an-arn", False),
        ("ArnNotEquals", REPO, REPO, False),
        ("ArnNotLike", ["arn:aws:s3:::*", "arn:aws:ecr:*:*:repository/x"], REPO, True),
        ("ArnNotLike", ["arn:aws:s3:::*", "arn:aws:ecr:*:*:*"], REPO, False),
    ],
)
def test_condition_operator(operator: str, values: Any, context: str, expected: bool) -> None:
    assert condition_holds({operator: {"my:Key": values}}, **{"my:key": context}) is expected


@pytest.mark.parametrize(
    ("operator", "values", "source", "expected"),
    [
        ("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
        ("IpAddress", "203.0.113.0/24", "203.0.114.7", False),
        ("IpAddress", "203.0.113.7", "203.0.113.7", True),  # a bare address is a /32
        ("IpAddress", ["10.0.0.0/8", "192.0.2.0/24"], "192.0.2.200", True),
        ("IpAddress", "2001:db8::/32", "2001:db8:1::1", True),
        ("IpAddress", "2001:db8::/32", "2001:db9::1", False),
        ("IpAddress", "2001:db8::/32", "203.0.113.7", False),  # v4 against a v6 block
        ("IpAddress", "0.0.0.0/0", "::1", False),  # v6 against a v4 block
        ("IpAddress", "203.0.113.0/24", "not-an-ip", False),
        ("NotIpAddress", ["10.0.0.0/8", "2001:db8::/32"], "203.0.113.7", True),
        ("NotIpAddress", ["10.0.0.0/8", "2001:db8::/32"], "2001:db8::5", False),
        ("NotIpAddress", "10.0.0.0/8", "not-an-ip", False),
    ],
)
def test_ip_conditions(operator: str, values: Any, source: str, expected: bool) -> None:
    assert condition_holds({operator: {"aws:SourceIp": values}}, **{"aws:SourceIp": source}) is (
        expected
    )


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        # A missing key makes a condition false ...
        ("StringEquals", False),
        ("NumericLessThan", False),
        ("DateGreaterThan", False),
        ("Bool", False),
        ("IpAddress", False),
        ("ArnLike", False),
        ("ForAnyValue:StringEquals", False),
        # ... except with IfExists, ForAllValues, and the negated operators (AWS: "If the
        # policy condition requires that the key is not matched ... the condition is true").
        ("StringEqualsIfExists", True),
        ("NumericLessThanIfExists", True),
        ("ForAnyValue:StringEqualsIfExists", True),
        ("ForAllValues:StringEquals", True),
        ("StringNotEquals", True),
        ("StringNotLike", True),
        ("ArnNotLike", True),
        ("NotIpAddress", True),
    ],
)
def test_missing_key(operator: str, expected: bool) -> None:
    base = operator.split(":")[-1]
    typed_values = {
        "Numeric": "1",
        "Date": "2024-01-01",
        "Bool": "true",
        "IpAddress": "10.0.0.0/8",
        "NotIpAddress": "10.0.0.0/8",
    }
    value = next((v for prefix, v in typed_values.items() if base.startswith(prefix)), "x")
    assert condition_holds({operator: {"absent:Key": value}}) is expected


def test_if_exists_still_evaluates_a_present_key() -> None:
    block = {"StringEqualsIfExists": {"ecr:ResourceTag/team": "red"}}
    assert condition_holds(block, **{"ecr:ResourceTag/team": "red"})
    assert not condition_holds(block, **{"ecr:ResourceTag/team": "blue"})


@pytest.mark.parametrize(
    ("value", "context", "expected"),
    [
        ("true", {}, True),
        ("true", {"aws:TokenIssueTime": "2024-01-01"}, False),
        ("false", {"aws:TokenIssueTime": "2024-01-01"}, True),
        ("false", {}, False),
        ("true", {"aws:TokenIssueTime": []}, True),  # an empty multivalued key counts as absent
    ],
)
def test_null_condition(value: str, context: dict[str, Any], expected: bool) -> None:
    assert condition_holds({"Null": {"aws:TokenIssueTime": value}}, **context) is expected


@pytest.mark.parametrize(
    ("operator", "allowed", "tags", "expected"),
    [
        ("ForAllValues:StringEquals", ["env", "team"], ["env"], True),
        ("ForAllValues:StringEquals", ["env", "team"], ["env", "team"], True),
        ("ForAllValues:StringEquals", ["env", "team"], ["env", "cost"], False),
        ("ForAllValues:StringEquals", ["env", "team"], [], True),  # empty set: vacuously true
        ("ForAnyValue:StringEquals", ["env", "team"], ["cost", "team"], True),
        ("ForAnyValue:StringEquals", ["env", "team"], ["cost"], False),
        ("ForAnyValue:StringEquals", ["env", "team"], [], False),
        ("ForAnyValue:StringLike", ["sec*"], ["a", "security"], True),
        # Negated set operators apply the negation per context value.
        ("ForAllValues:StringNotEquals", ["secret"], ["env", "team"], True),
        ("ForAllValues:StringNotEquals", ["secret"], ["env", "secret"], False),
        ("ForAnyValue:StringNotEquals", ["secret"], ["env", "secret"], True),
        ("ForAnyValue:StringNotEquals", ["secret"], ["secret"], False),
        # Without a prefix, a multivalued key: any value for positive operators ...
        ("StringEquals", ["env"], ["cost", "env"], True),
        ("StringEquals", ["env"], ["cost"], False),
        # ... and no value may match for negated ones.
        ("StringNotEquals", ["secret"], ["env", "secret"], False),
        ("StringNotEquals", ["secret"], ["env", "team"], True),
    ],
)
def test_set_operators(operator: str, allowed: list[str], tags: list[str], expected: bool) -> None:
    assert condition_holds({operator: {"aws:TagKeys": allowed}}, **{"aws:TagKeys": tags}) is (
        expected
    )


def test_keys_and_operators_are_anded() -> None:
    block = {
        "StringEquals": {"ecr:ResourceTag/env": "prod", "ecr:ResourceTag/team": "red"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    full = {"ecr:ResourceTag/env": "prod", "ecr:ResourceTag/team": "red"}
    assert condition_holds(block, **full, **{"aws:SecureTransport": "true"})
    assert not condition_holds(block, **full, **{"aws:SecureTransport": "false"})
    assert not condition_holds(
        block, **{"ecr:ResourceTag/env": "prod", "aws:SecureTransport": "true"}
    )


def test_condition_key_names_are_case_insensitive() -> None:
    assert condition_holds({"StringEquals": {"AWS:USERNAME": "alice"}}, **{"aws:username": "alice"})


def test_condition_values_substitute_policy_variables() -> None:
    block = {"StringEquals": {"ecr:ResourceTag/owner": "${aws:username}"}}
    assert condition_holds(block, **{"aws:username": "alice", "ecr:ResourceTag/owner": "alice"})
    assert not condition_holds(block, **{"aws:username": "alice", "ecr:ResourceTag/owner": "bob"})
    assert not condition_holds(block, **{"ecr:ResourceTag/owner": "${aws:username}"})
    userid = {"StringLike": {"ecr:ResourceTag/owner": "${aws:userid}:*"}}
    assert condition_holds(userid, **{"aws:userid": "AIDA1", "ecr:ResourceTag/owner": "AIDA1:x"})


def test_principal_arn_condition_defaults_from_the_request() -> None:
    block = {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"}}
    assert condition_holds(block)
    other = identity(allow(Condition=block))
    assert decide(request(principal=BOB, account=OTHER), [other], _repo_policy("*")) is (
        Outcome.IMPLICIT_DENY
    )


def test_deny_with_condition_applies_only_when_the_condition_holds() -> None:
    # The classic "deny unless from the corporate network" guard.
    guard = {
        **deny("ecr:*"),
        "Sid": "Corp",
        "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    policy = identity(allow("ecr:*"), guard)
    inside = request(**{"aws:SourceIp": "10.1.2.3"})
    outside = request(**{"aws:SourceIp": "198.51.100.1"})
    assert decide(inside, [policy]) is Outcome.ALLOW
    assert evaluate(outside, [policy], None, ACCOUNT) == Decision(Outcome.EXPLICIT_DENY, "Corp")
    # With no source IP at all, the negated operator holds: the deny applies.
    assert decide(request(), [policy]) is Outcome.EXPLICIT_DENY


def test_current_time_window() -> None:
    window = {
        "DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"},
        "DateLessThan": {"aws:CurrentTime": "2024-12-31T23:59:59Z"},
    }
    assert condition_holds(window, **{"aws:CurrentTime": "2024-06-01T12:00:00Z"})
    assert not condition_holds(window, **{"aws:CurrentTime": "2025-01-01T00:00:00Z"})
    epoch = {"DateGreaterThan": {"aws:EpochTime": "1704067200"}}
    assert condition_holds(epoch, **{"aws:EpochTime": "1704067201"})
    assert not condition_holds(epoch, **{"aws:EpochTime": "1704067200"})


def test_unreadable_values_never_satisfy_set_operators() -> None:
    for operator in ("ForAnyValue:NumericNotEquals", "ForAllValues:NumericNotEquals"):
        assert not condition_holds({operator: {"my:Sizes": "5"}}, **{"my:Sizes": ["big"]})
    assert condition_holds(
        {"ForAllValues:NumericNotEquals": {"my:Sizes": "5"}}, **{"my:Sizes": ["6", "7"]}
    )
