"""ApiContext.authorize and repository ARNs."""

from __future__ import annotations

import pytest

from moorage.domain.errors import AccessDenied, Unauthenticated
from moorage.iam.actions import Action
from moorage.ports.access import AccessRequest, Principal
from moorage.protocols.aws.context import ApiContext, RepositoryArn, parse_repository_arn
from moorage.protocols.aws.errors import ApiError
from tests.unit.protocols.aws.fakes import ACCOUNT, ALICE, REGION, RecordingAuthorizer


def context(
    authorizer: RecordingAuthorizer, principal: Principal = ALICE, registry_id: str = ACCOUNT
) -> ApiContext[None]:
    return ApiContext(
        operation="CreateRepository",
        principal=principal,
        registry_id=registry_id,
        region=REGION,
        request_id="req-1",
        source_ip="192.0.2.7",
        secure_transport=True,
        services=None,
        authorizer=authorizer,
    )


async def test_authorize_asks_with_everything_the_policy_needs() -> None:
    authorizer = RecordingAuthorizer()
    await context(authorizer).authorize(
        Action.TAG_RESOURCE, "web", request_tags={"team": "a"}, tag_keys=("team",)
    )
    [request] = authorizer.requests
    assert request == AccessRequest(
        principal=ALICE,
        action=Action.TAG_RESOURCE,
        registry_id=ACCOUNT,
        repository="web",
        credentials=request.credentials,
        request_tags={"team": "a"},
        tag_keys=("team",),
    )
    assert request.credentials.source_ip == "192.0.2.7"
    assert request.credentials.secure_transport is True
    assert request.credentials.authorization is None


async def test_a_refusal_reads_like_aws() -> None:
    authorizer = RecordingAuthorizer(deny={("ecr:CreateRepository", "team/web")})
    with pytest.raises(ApiError) as caught:
        await context(authorizer, registry_id="210987654321").authorize(
            "ecr:CreateRepository", "team/web"
        )
    assert caught.value.type_name == "AccessDeniedException"
    assert caught.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
        "ecr:CreateRepository on resource: "
        "arn:aws:ecr:us-east-1:210987654321:repository/team/web"
    )


async def test_an_authorizers_own_aws_text_is_kept_and_other_texts_are_not() -> None:
    class Explains:
        def __init__(self, message: str) -> None:
            self.message = message

        async def authorize(self, request: AccessRequest) -> None:
            raise AccessDenied(self.message)

    base = (
        f"User: {ALICE.arn} is not authorized to perform: ecr:PutImage on resource: "
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/web"
    )
    for given, answered in [
        (f"{base} with an explicit deny", f"{base} with an explicit deny"),
        ("policy p1 statement 3 denies", base),
    ]:
        ctx = ApiContext(
            operation="PutImage",
            principal=ALICE,
            registry_id=ACCOUNT,
            region=REGION,
            request_id="r",
            source_ip=None,
            secure_transport=False,
            services=None,
            authorizer=Explains(given),
        )
        with pytest.raises(ApiError) as caught:
            await ctx.authorize(Action.PUT_IMAGE, "web")
        assert caught.value.message == answered


async def test_a_registry_level_refusal_names_star_and_anonymous() -> None:
    authorizer = RecordingAuthorizer(deny={("ecr:GetAuthorizationToken", None)})
    with pytest.raises(ApiError) as caught:
        await context(authorizer, principal=Principal(registry_id=ACCOUNT)).authorize(
            Action.GET_AUTHORIZATION_TOKEN
        )
    assert caught.value.message == (
        "User: anonymous is not authorized to perform: ecr:GetAuthorizationToken on resource: *"
    )


async def test_other_authorizer_errors_propagate() -> None:
    class Refuses:
        async def authorize(self, request: AccessRequest) -> None:
            raise Unauthenticated("who are you")

    ctx = ApiContext(
        operation="ListImages",
        principal=ALICE,
        registry_id=ACCOUNT,
        region=REGION,
        request_id="r",
        source_ip=None,
        secure_transport=False,
        services=None,
        authorizer=Refuses(),
    )
    with pytest.raises(Unauthenticated):
        await ctx.authorize(Action.LIST_IMAGES, "web")


def test_repository_arn() -> None:
    ctx = context(RecordingAuthorizer())
    assert ctx.repository_arn("a/b") == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/a/b"


def test_parse_repository_arn() -> None:
    arn = parse_repository_arn(
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/web", region=REGION
    )
    assert arn == RepositoryArn("aws", "us-east-1", ACCOUNT, "team/web")


@pytest.mark.parametrize(
    "arn",
    [
        "web",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:registry/web",
        "arn:aws:ecr:us-east-1:1234:repository/web",
        f"arn:aws:s3:us-east-1:{ACCOUNT}:repository/web",
        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/web",
        f"arn:aws-cn:ecr:us-east-1:{ACCOUNT}:repository/web",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/we b",
    ],
)
def test_malformed_or_foreign_arns_are_invalid_parameters(arn: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_repository_arn(arn, region=REGION)
    assert caught.value.type_name == "InvalidParameterException"
    assert caught.value.message.startswith(
        "Invalid parameter at 'resourceArn' failed to satisfy constraint:"
    )
