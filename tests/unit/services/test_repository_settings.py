"""Repository settings, resource tags and policies, the registry service, and tag
immutability on push: the services on SQLite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    InvalidName,
    InvalidParameter,
    InvalidTagParameter,
    PolicyTextInvalid,
    RegistryPolicyNotFound,
    RepositoryAlreadyExists,
    RepositoryNotFound,
    RepositoryPolicyNotFound,
    TagImmutable,
    TooManyTags,
)
from moorage.domain.models import Repository, TagMutability
from moorage.ports.clock import system_clock
from moorage.services.images import ImageService, Reference
from moorage.services.registry import RegistryPolicies, RegistryPolicyScope, RegistryService
from moorage.services.repositories import RepositoryService
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store

REGISTRY = "123456789012"
OTHER_REGISTRY = "210987654321"
NAME = "team/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "pull",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            }
        ],
    },
    indent=2,
)
REPOSITORY_POLICY_INVALID = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid repository policy provided'"
)
REGISTRY_POLICY_INVALID = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid registry policy provided'"
)


@pytest.fixture
async def metadata(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    yield store
    await store.close()


@pytest.fixture
def repositories(metadata: SqlMetadataStore) -> RepositoryService:
    return RepositoryService(metadata, system_clock)


@pytest.fixture
def registry(metadata: SqlMetadataStore) -> RegistryService:
    return RegistryService(metadata, system_clock)


# -- create ------------------------------------------------------------------------------


async def test_create_keeps_the_old_signature_and_ecr_defaults(
    repositories: RepositoryService,
) -> None:
    created = await repositories.create(REGISTRY, NAME)
    assert created.image_tag_mutability is TagMutability.MUTABLE
    assert created.mutability_exclusion_filters == ()
    assert (created.scan_on_push, created.encryption_type, created.kms_key) == (
        False,
        "AES256",
        None,
    )
    assert await repositories.get(REGISTRY, NAME) == created
    assert await repositories.list_tags(REGISTRY, NAME) == {}


async def test_create_with_every_setting_and_tags(repositories: RepositoryService) -> None:
    created = await repositories.create(
        REGISTRY,
        NAME,
        image_tag_mutability=TagMutability.IMMUTABLE_WITH_EXCLUSION,
        exclusion_filters=["latest", "dev-*"],
        scan_on_push=True,
        encryption_type="KMS",
        kms_key="alias/team",
        tags={"team": "a", "cost-centre": ""},
    )
    assert created.image_tag_mutability is TagMutability.IMMUTABLE_WITH_EXCLUSION
    assert created.mutability_exclusion_filters == ("latest", "dev-*")
    assert created.scan_on_push is True
    assert (created.encryption_type, created.kms_key) == ("KMS", "alias/team")
    assert await repositories.get(REGISTRY, NAME) == created
    assert await repositories.list_tags(REGISTRY, NAME) == {"cost-centre": "", "team": "a"}
    dsse = await repositories.create(REGISTRY, "team/dsse", encryption_type="KMS_DSSE")
    assert (dsse.encryption_type, dsse.kms_key) == ("KMS_DSSE", None)  # AWS-managed key


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"encryption_type": "DES"}, InvalidParameter, "enum value set"),
        ({"kms_key": "alias/team"}, InvalidParameter, "KMS or KMS_DSSE"),
        ({"encryption_type": "KMS", "kms_key": ""}, InvalidParameter, "between 1 and 2048"),
        ({"encryption_type": "KMS", "kms_key": "k" * 2049}, InvalidParameter, "and 2048"),
        (
            {"image_tag_mutability": TagMutability.IMMUTABLE, "exclusion_filters": ["latest"]},
            InvalidParameter,
            "only be used with",
        ),
        (
            {"image_tag_mutability": TagMutability.MUTABLE_WITH_EXCLUSION},
            InvalidParameter,
            "1 to 5",
        ),
        ({"tags": {"": "v"}}, InvalidTagParameter, "1 to 128"),
        ({"tags": {"k" * 129: "v"}}, InvalidTagParameter, "1 to 128"),
        ({"tags": {"k": "v" * 257}}, InvalidTagParameter, "at most 256"),
        ({"tags": {"aws:team": "a"}}, InvalidTagParameter, "reserved"),
        ({"tags": {"AWS:team": "a"}}, InvalidTagParameter, "reserved"),
        ({"tags": {f"k{i}": "" for i in range(51)}}, TooManyTags, "maximum number of tags"),
    ],
)
async def test_create_refuses_what_ecr_refuses(
    repositories: RepositoryService,
    settings: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        await repositories.create(REGISTRY, NAME, **settings)  # type: ignore[arg-type]
    with pytest.raises(RepositoryNotFound):
        await repositories.get(REGISTRY, NAME)


async def test_create_accepts_the_limits(repositories: RepositoryService) -> None:
    tags = {f"k{i:02d}".ljust(128, "x"): "v" * 256 for i in range(50)}
    await repositories.create(REGISTRY, NAME, tags=tags)
    assert await repositories.list_tags(REGISTRY, NAME) == tags


async def test_create_twice_writes_no_tags(repositories: RepositoryService) -> None:
    await repositories.create(REGISTRY, NAME, tags={"first": "1"})
    with pytest.raises(RepositoryAlreadyExists):
        await repositories.create(REGISTRY, NAME, tags={"second": "2"})
    assert await repositories.list_tags(REGISTRY, NAME) == {"first": "1"}


# -- settings ----------------------------------------------------------------------------


async def test_put_tag_mutability_and_scanning(repositories: RepositoryService) -> None:
    created = await repositories.create(REGISTRY, NAME)
    immutable = await repositories.put_tag_mutability(
        REGISTRY, NAME, TagMutability.IMMUTABLE_WITH_EXCLUSION, ["latest"]
    )
    assert immutable.image_tag_mutability is TagMutability.IMMUTABLE_WITH_EXCLUSION
    assert immutable.mutability_exclusion_filters == ("latest",)
    scanned = await repositories.put_scanning_configuration(REGISTRY, NAME, True)
    assert scanned.scan_on_push is True
    assert scanned.mutability_exclusion_filters == ("latest",)
    # Back to a plain mode: the filters go with the mode that used them.
    mutable = await repositories.put_tag_mutability(REGISTRY, NAME, TagMutability.MUTABLE)
    assert (mutable.image_tag_mutability, mutable.mutability_exclusion_filters) == (
        TagMutability.MUTABLE,
        (),
    )
    assert (mutable.id, mutable.created_at, mutable.scan_on_push) == (
        created.id,
        created.created_at,
        True,
    )
    with pytest.raises(InvalidParameter):
        await repositories.put_tag_mutability(REGISTRY, NAME, TagMutability.MUTABLE, ["x"])
    with pytest.raises(RepositoryNotFound):
        await repositories.put_tag_mutability(REGISTRY, "team/absent", TagMutability.IMMUTABLE)
    with pytest.raises(RepositoryNotFound):
        await repositories.put_scanning_configuration(REGISTRY, "team/absent", True)
    assert await repositories.get(REGISTRY, NAME) == mutable


# -- describe ----------------------------------------------------------------------------


async def test_describe(repositories: RepositoryService) -> None:
    made = {name: await repositories.create(REGISTRY, name) for name in ("b/one", "a/two", "cc")}
    await repositories.create(OTHER_REGISTRY, "a/elsewhere")
    everything = await repositories.describe(REGISTRY)
    assert [r.name for r in everything] == ["a/two", "b/one", "cc"]
    page = await repositories.describe(REGISTRY, None, after="a/two", limit=1)
    assert [r.name for r in page] == ["b/one"]
    named = await repositories.describe(REGISTRY, ["cc", "a/two", "cc"])
    assert named == [made["cc"], made["a/two"]]
    with pytest.raises(RepositoryNotFound, match="'a/elsewhere' does not exist"):
        await repositories.describe(REGISTRY, ["cc", "a/elsewhere"])
    with pytest.raises(InvalidName):
        await repositories.describe(REGISTRY, ["Upper"])
    with pytest.raises(InvalidParameter):
        await repositories.describe(REGISTRY, [])
    with pytest.raises(InvalidParameter):
        await repositories.describe(REGISTRY, [f"r{i}" for i in range(101)])
    with pytest.raises(InvalidParameter, match="cannot be used with repositoryNames"):
        await repositories.describe(REGISTRY, ["cc"], limit=1)


# -- resource tags -----------------------------------------------------------------------


async def test_tag_untag_and_list(repositories: RepositoryService) -> None:
    await repositories.create(REGISTRY, NAME, tags={"team": "a"})
    await repositories.tag_resource(REGISTRY, NAME, {"team": "b", "env": ""})
    assert await repositories.list_tags(REGISTRY, NAME) == {"env": "", "team": "b"}
    await repositories.untag_resource(REGISTRY, NAME, ["env", "absent"])
    assert await repositories.list_tags(REGISTRY, NAME) == {"team": "b"}
    with pytest.raises(InvalidTagParameter):
        await repositories.tag_resource(REGISTRY, NAME, {"aws:cloudformation:stack": "x"})
    with pytest.raises(InvalidTagParameter):
        await repositories.untag_resource(REGISTRY, NAME, ["aws:x"])
    with pytest.raises(InvalidTagParameter):
        await repositories.untag_resource(REGISTRY, NAME, [""])
    for call in (
        repositories.tag_resource(REGISTRY, "team/absent", {"k": "v"}),
        repositories.untag_resource(REGISTRY, "team/absent", ["k"]),
        repositories.list_tags(REGISTRY, "team/absent"),
    ):
        with pytest.raises(RepositoryNotFound):
            await call


async def test_the_tag_limit_counts_the_result(repositories: RepositoryService) -> None:
    start = {f"k{i}": "" for i in range(48)}
    await repositories.create(REGISTRY, NAME, tags=start)
    # Overwriting existing keys adds nothing: 48 + 2 new = 50 is allowed.
    await repositories.tag_resource(REGISTRY, NAME, {"k0": "x", "k1": "y", "n1": "", "n2": ""})
    with pytest.raises(TooManyTags, match="is 50"):
        await repositories.tag_resource(REGISTRY, NAME, {"k2": "changed", "n3": ""})
    tags = await repositories.list_tags(REGISTRY, NAME)
    assert len(tags) == 50
    assert (tags["k0"], tags["k2"]) == ("x", "")  # the refused call changed nothing
    await repositories.untag_resource(REGISTRY, NAME, ["n1"])
    await repositories.tag_resource(REGISTRY, NAME, {"n3": ""})


# -- repository policy -------------------------------------------------------------------


async def test_repository_policy_lifecycle(repositories: RepositoryService) -> None:
    await repositories.create(REGISTRY, NAME)
    missing = (
        f"Repository policy does not exist for the repository with name '{NAME}' "
        f"in the registry with id '{REGISTRY}'"
    )
    with pytest.raises(RepositoryPolicyNotFound) as caught:
        await repositories.get_policy(REGISTRY, NAME)
    assert caught.value.message == missing
    with pytest.raises(RepositoryPolicyNotFound, match="does not exist"):
        await repositories.delete_policy(REGISTRY, NAME)
    assert await repositories.set_policy(REGISTRY, NAME, POLICY) == POLICY
    assert await repositories.get_policy(REGISTRY, NAME) == POLICY  # the text, byte for byte
    replacement = POLICY.replace("pull", "pull-only")
    await repositories.set_policy(REGISTRY, NAME, replacement)
    assert await repositories.delete_policy(REGISTRY, NAME) == replacement
    with pytest.raises(RepositoryPolicyNotFound):
        await repositories.get_policy(REGISTRY, NAME)
    with pytest.raises(RepositoryNotFound):
        await repositories.set_policy(REGISTRY, "team/absent", POLICY)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        # An identity policy: a repository policy needs a Principal.
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}',
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Principal": "*", '
        '"Action": "ecr:*"}]}',
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
        '"Action": "ecr:*", "Unknown": 1}]}',
    ],
)
async def test_malformed_policies_are_refused(
    repositories: RepositoryService, registry: RegistryService, text: str
) -> None:
    await repositories.create(REGISTRY, NAME)
    with pytest.raises(PolicyTextInvalid) as caught:
        await repositories.set_policy(REGISTRY, NAME, text)
    assert caught.value.message == REPOSITORY_POLICY_INVALID
    assert caught.value.detail is not None  # the parser's reason, for the log
    with pytest.raises(PolicyTextInvalid) as caught:
        await registry.put_policy(REGISTRY, text)
    assert caught.value.message == REGISTRY_POLICY_INVALID
    with pytest.raises(RepositoryPolicyNotFound):
        await repositories.get_policy(REGISTRY, NAME)
    with pytest.raises(RegistryPolicyNotFound):
        await registry.get_policy(REGISTRY)


async def test_policies_longer_than_10240_characters_are_refused(
    repositories: RepositoryService, registry: RegistryService
) -> None:
    await repositories.create(REGISTRY, NAME)
    padded = POLICY[:-1] + " " * (10_240 - len(POLICY)) + "}"
    assert len(padded) == 10_240
    await repositories.set_policy(REGISTRY, NAME, padded)
    await registry.put_policy(REGISTRY, padded)
    too_long = padded[:-1] + " }"
    with pytest.raises(InvalidParameter, match="less than or equal to 10240"):
        await repositories.set_policy(REGISTRY, NAME, too_long)
    with pytest.raises(InvalidParameter, match="less than or equal to 10240"):
        await registry.put_policy(REGISTRY, too_long)


async def test_deleting_a_repository_deletes_its_tags_and_policy(
    repositories: RepositoryService,
) -> None:
    await repositories.create(REGISTRY, NAME, tags={"team": "a"})
    await repositories.set_policy(REGISTRY, NAME, POLICY)
    await repositories.delete(REGISTRY, NAME)
    await repositories.create(REGISTRY, NAME)
    assert await repositories.list_tags(REGISTRY, NAME) == {}
    with pytest.raises(RepositoryPolicyNotFound):
        await repositories.get_policy(REGISTRY, NAME)


# -- registry ----------------------------------------------------------------------------


async def test_registry_policy_lifecycle(registry: RegistryService) -> None:
    with pytest.raises(RegistryPolicyNotFound) as caught:
        await registry.get_policy(REGISTRY)
    assert caught.value.message == (
        f"Registry policy does not exist in the registry with id '{REGISTRY}'"
    )
    with pytest.raises(RegistryPolicyNotFound):
        await registry.delete_policy(REGISTRY)
    assert await registry.put_policy(REGISTRY, POLICY) == POLICY
    assert await registry.get_policy(REGISTRY) == POLICY
    with pytest.raises(RegistryPolicyNotFound):
        await registry.get_policy(OTHER_REGISTRY)
    assert await registry.delete_policy(REGISTRY) == POLICY
    with pytest.raises(RegistryPolicyNotFound):
        await registry.get_policy(REGISTRY)


async def test_account_settings(registry: RegistryService) -> None:
    defaults = {
        "BASIC_SCAN_TYPE_VERSION": "AWS_NATIVE",
        "REGISTRY_POLICY_SCOPE": "V2",
        "BLOB_MOUNTING": "ENABLED",
    }
    for name, value in defaults.items():
        assert await registry.get_account_setting(REGISTRY, name) == value
    assert await registry.put_account_setting(REGISTRY, "REGISTRY_POLICY_SCOPE", "V1") == "V1"
    await registry.put_account_setting(REGISTRY, "BLOB_MOUNTING", "DISABLED")
    await registry.put_account_setting(REGISTRY, "BASIC_SCAN_TYPE_VERSION", "CLAIR")
    assert await registry.get_account_setting(REGISTRY, "REGISTRY_POLICY_SCOPE") == "V1"
    assert await registry.get_account_setting(REGISTRY, "BLOB_MOUNTING") == "DISABLED"
    assert await registry.get_account_setting(REGISTRY, "BASIC_SCAN_TYPE_VERSION") == "CLAIR"
    for name, value in defaults.items():  # settings belong to one registry
        assert await registry.get_account_setting(OTHER_REGISTRY, name) == value
    for name, value in [
        ("REGISTRY_POLICY_SCOPE", "V3"),
        ("BLOB_MOUNTING", "enabled"),  # values are case-sensitive, as enums are
        ("BASIC_SCAN_TYPE_VERSION", "TRIVY"),
    ]:
        with pytest.raises(InvalidParameter, match="Valid values"):
            await registry.put_account_setting(REGISTRY, name, value)
    with pytest.raises(InvalidParameter, match="'name'"):
        await registry.get_account_setting(REGISTRY, "NO_SUCH_SETTING")
    with pytest.raises(InvalidParameter, match="'name'"):
        await registry.put_account_setting(REGISTRY, "NO_SUCH_SETTING", "V2")


async def test_policies_for(repositories: RepositoryService, registry: RegistryService) -> None:
    await repositories.create(REGISTRY, NAME, tags={"team": "web"})
    await repositories.create(REGISTRY, "team/bare")
    v2, v1 = RegistryPolicyScope.V2, RegistryPolicyScope.V1
    assert await registry.policies_for(REGISTRY, NAME) == (None, None, v2, {"team": "web"})
    await repositories.set_policy(REGISTRY, NAME, POLICY)
    registry_text = POLICY.replace("pull", "replicate")
    await registry.put_policy(REGISTRY, registry_text)
    await registry.put_account_setting(REGISTRY, "REGISTRY_POLICY_SCOPE", "V1")
    policies = await registry.policies_for(REGISTRY, NAME)
    assert policies == RegistryPolicies(POLICY, registry_text, v1, {"team": "web"})
    repository_text, registry_policy, scope, tags = policies  # unpacks as a tuple
    assert (repository_text, registry_policy, scope, tags) == (
        POLICY,
        registry_text,
        "V1",
        {"team": "web"},
    )
    assert await registry.policies_for(REGISTRY, "team/bare") == (None, registry_text, v1, {})
    assert await registry.policies_for(REGISTRY, None) == (None, registry_text, v1, {})
    assert await registry.policies_for(OTHER_REGISTRY, NAME) == (None, None, v2, {})


# -- tag immutability on push ------------------------------------------------------------


def manifest(config: bytes) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(Digest.of(config)),
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()


async def pushable(metadata: SqlMetadataStore, repository: Repository, *configs: bytes) -> None:
    """Record and link config blobs, as completed uploads do."""
    async with metadata.transaction() as tx:
        for config in configs:
            await tx.put_blob(Digest.of(config), len(config), system_clock())
            await tx.link_blob(repository.id, Digest.of(config), system_clock())


@pytest.mark.parametrize(
    ("mode", "filters", "tag", "moves"),
    [
        (TagMutability.MUTABLE, (), "v1", True),
        (TagMutability.IMMUTABLE, (), "v1", False),
        (TagMutability.IMMUTABLE_WITH_EXCLUSION, ("latest",), "latest", True),
        (TagMutability.IMMUTABLE_WITH_EXCLUSION, ("latest",), "v1", False),
        (TagMutability.MUTABLE_WITH_EXCLUSION, ("v*",), "v1", False),
        (TagMutability.MUTABLE_WITH_EXCLUSION, ("v*",), "latest", True),
    ],
)
async def test_push_moves_a_tag_only_when_it_is_mutable(
    metadata: SqlMetadataStore,
    repositories: RepositoryService,
    mode: TagMutability,
    filters: tuple[str, ...],
    tag: str,
    moves: bool,
) -> None:
    images = ImageService(metadata, repositories, system_clock)
    repository = await repositories.create(
        REGISTRY, NAME, image_tag_mutability=mode, exclusion_filters=filters
    )
    await pushable(metadata, repository, b'{"n": 1}', b'{"n": 2}')
    first, second = manifest(b'{"n": 1}'), manifest(b'{"n": 2}')
    reference = Reference.parse(tag)
    await images.put_manifest(REGISTRY, NAME, reference, first, OCI_MANIFEST)
    # The same manifest under the same tag again is never an overwrite.
    again = await images.put_manifest(REGISTRY, NAME, reference, first, OCI_MANIFEST)
    assert again.created is False
    if moves:
        await images.put_manifest(REGISTRY, NAME, reference, second, OCI_MANIFEST)
        expected = second
    else:
        with pytest.raises(TagImmutable) as caught:
            await images.put_manifest(REGISTRY, NAME, reference, second, OCI_MANIFEST)
        assert caught.value.message == (
            f"The image tag '{tag}' already exists in the '{NAME}' repository and cannot be "
            "overwritten because the tag is immutable."
        )
        expected = first
        # Nothing of the refused push was written, not even the untagged manifest.
        with pytest.raises(Exception, match="not found"):
            await images.get_manifest(REGISTRY, NAME, Reference.parse(str(Digest.of(second))))
    pulled = await images.get_manifest(REGISTRY, NAME, reference)
    assert pulled.payload == expected
    # A new tag, and a push by digest, are always allowed.
    await images.put_manifest(REGISTRY, NAME, Reference.parse("other"), second, OCI_MANIFEST)
    await images.put_manifest(
        REGISTRY, NAME, Reference.parse(str(Digest.of(second))), second, OCI_MANIFEST
    )
