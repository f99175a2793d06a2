"""The identity service on SQLite: validation, secrets at rest, keys, policies, init_admin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moorage.domain.errors import (
    AccessDenied,
    AccessKeyLimitExceeded,
    AccessKeyNotFound,
    AccountAlreadyExists,
    AccountNotFound,
    AdminAlreadyExists,
    InvalidAccount,
    InvalidPolicyName,
    InvalidUserName,
    MalformedPolicyDocument,
    UserAlreadyExists,
    UserNotFound,
    UserPolicyNotFound,
)
from moorage.domain.identities import AccessKeyStatus, UserPolicy
from moorage.iam.policy import Effect
from moorage.iam.secrets import KeyRing, MasterKey, MasterKeyError
from moorage.ports.access import Principal
from moorage.services.authentication import user_principal
from moorage.services.identities import ADMIN_POLICY, ADMIN_POLICY_NAME, IdentityService
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from tests.postgres import throwaway_database

ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PULL_ONLY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}]}'
)
MASTER = MasterKey(bytes(range(32)))


@pytest.fixture
async def metadata(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    yield store
    await store.close()


def service_on(metadata: SqlMetadataStore, master: MasterKey = MASTER) -> IdentityService:
    return IdentityService(metadata, KeyRing.derive(master).access_key_secrets, lambda: NOW)


@pytest.fixture
async def service(metadata: SqlMetadataStore) -> IdentityService:
    identities = service_on(metadata)
    await identities.create_account(ACCOUNT, "team")
    return identities


async def test_accounts(metadata: SqlMetadataStore) -> None:
    identities = service_on(metadata)
    created = await identities.create_account(ACCOUNT, "team")
    assert (created.registry_id, created.name, created.created_at) == (ACCOUNT, "team", NOW)
    assert await identities.get_account(ACCOUNT) == created
    assert await identities.list_accounts() == [created]
    with pytest.raises(AccountAlreadyExists):
        await identities.create_account(ACCOUNT, "again")
    with pytest.raises(InvalidAccount):
        await identities.create_account("12345", "short")
    with pytest.raises(AccountNotFound):
        await identities.get_account("999999999999")


async def test_users(service: IdentityService) -> None:
    alice = await service.create_user(ACCOUNT, "alice")
    bot = await service.create_user(ACCOUNT, "bot", path="/ci/")
    assert alice.arn == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert bot.arn == f"arn:aws:iam::{ACCOUNT}:user/ci/bot"
    assert await service.get_user(ACCOUNT, "alice") == alice
    assert [u.name for u in await service.list_users(ACCOUNT)] == ["alice", "bot"]
    with pytest.raises(UserAlreadyExists, match="User with name alice already exists"):
        await service.create_user(ACCOUNT, "alice")
    with pytest.raises(InvalidUserName):
        await service.create_user(ACCOUNT, "no spaces")
    with pytest.raises(InvalidUserName):
        await service.create_user(ACCOUNT, "carol", path="ci")
    with pytest.raises(AccountNotFound):
        await service.create_user("999999999999", "alice")
    with pytest.raises(AccountNotFound):
        await service.list_users("999999999999")
    assert await service.delete_user(ACCOUNT, "alice") == alice
    with pytest.raises(UserNotFound, match=r"The user with name alice cannot be found\."):
        await service.delete_user(ACCOUNT, "alice")


async def test_access_keys_are_stored_encrypted_and_shown_once(
    service: IdentityService, metadata: SqlMetadataStore
) -> None:
    await service.create_user(ACCOUNT, "alice")
    new = await service.create_access_key(ACCOUNT, "alice")
    assert new.key.status is AccessKeyStatus.ACTIVE
    assert new.secret_access_key not in repr(new)
    [listed] = await service.list_access_keys(ACCOUNT, "alice")
    assert listed == new.key
    assert new.secret_access_key.encode() not in listed.secret_ciphertext
    # What the database holds decrypts, with the key id as context, to the secret shown.
    async with metadata.read() as tx:
        stored = await tx.get_access_key(new.access_key_id)
    assert stored is not None
    cipher = KeyRing.derive(MASTER).access_key_secrets
    assert cipher.decrypt(stored.secret_ciphertext, new.access_key_id) == new.secret_access_key


async def test_two_keys_per_user(service: IdentityService) -> None:
    await service.create_user(ACCOUNT, "alice")
    first = await service.create_access_key(ACCOUNT, "alice")
    await service.create_access_key(ACCOUNT, "alice")
    with pytest.raises(AccessKeyLimitExceeded, match="AccessKeysPerUser: 2"):
        await service.create_access_key(ACCOUNT, "alice")
    await service.delete_access_key(ACCOUNT, "alice", first.access_key_id)
    await service.create_access_key(ACCOUNT, "alice")


async def test_key_status_and_deletion_check_the_owner(service: IdentityService) -> None:
    await service.create_user(ACCOUNT, "alice")
    await service.create_user(ACCOUNT, "bob")
    key = await service.create_access_key(ACCOUNT, "alice")
    with pytest.raises(AccessKeyNotFound, match=key.access_key_id):
        await service.deactivate_access_key(ACCOUNT, "bob", key.access_key_id)
    with pytest.raises(AccessKeyNotFound):
        await service.delete_access_key(ACCOUNT, "bob", key.access_key_id)
    inactive = await service.deactivate_access_key(ACCOUNT, "alice", key.access_key_id)
    assert inactive.status is AccessKeyStatus.INACTIVE
    assert (await service.list_access_keys(ACCOUNT, "alice"))[0].status is AccessKeyStatus.INACTIVE
    active = await service.activate_access_key(ACCOUNT, "alice", key.access_key_id)
    assert active.status is AccessKeyStatus.ACTIVE
    await service.delete_access_key(ACCOUNT, "alice", key.access_key_id)
    assert await service.list_access_keys(ACCOUNT, "alice") == []
    with pytest.raises(AccessKeyNotFound):
        await service.delete_access_key(ACCOUNT, "alice", key.access_key_id)


async def test_keys_are_refused_under_another_master_key(
    service: IdentityService, metadata: SqlMetadataStore
) -> None:
    await service.create_user(ACCOUNT, "alice")
    await service.create_user(ACCOUNT, "bob")
    await service.create_access_key(ACCOUNT, "alice")
    elsewhere = service_on(metadata, MasterKey(bytes(32)))
    with pytest.raises(MasterKeyError, match="differs"):
        await elsewhere.create_access_key(ACCOUNT, "bob")
    assert await service.list_access_keys(ACCOUNT, "bob") == []


async def test_policies(service: IdentityService) -> None:
    alice = await service.create_user(ACCOUNT, "alice")
    put = await service.put_user_policy(ACCOUNT, "alice", "pull", PULL_ONLY)
    assert put == UserPolicy(alice.user_id, "pull", PULL_ONLY)
    assert await service.get_user_policy(ACCOUNT, "alice", "pull") == put
    await service.put_user_policy(ACCOUNT, "alice", "pull", ADMIN_POLICY)
    assert (await service.get_user_policy(ACCOUNT, "alice", "pull")).document == ADMIN_POLICY
    await service.put_user_policy(ACCOUNT, "alice", "extra", PULL_ONLY)
    assert [p.name for p in await service.list_user_policies(ACCOUNT, "alice")] == [
        "extra",
        "pull",
    ]
    await service.delete_user_policy(ACCOUNT, "alice", "extra")
    with pytest.raises(UserPolicyNotFound, match="The user policy with name extra cannot be found"):
        await service.delete_user_policy(ACCOUNT, "alice", "extra")
    with pytest.raises(UserPolicyNotFound):
        await service.get_user_policy(ACCOUNT, "alice", "extra")
    with pytest.raises(UserNotFound):
        await service.put_user_policy(ACCOUNT, "nobody", "pull", PULL_ONLY)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"Version":"2012-10-17","Statement":[]}', "Statement"),
        (
            '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}',
            "Principal",
        ),
        ('{"Statement":[{"Effect":"Allow","Action":"*"}]}', "Resource"),
        ("{" + '"Id":"' + "x" * 10_300 + '"}', "longer than"),
    ],
)
async def test_malformed_policies_are_refused_with_the_engines_reason(
    service: IdentityService, document: str, reason: str
) -> None:
    await service.create_user(ACCOUNT, "alice")
    with pytest.raises(MalformedPolicyDocument, match=reason):
        await service.put_user_policy(ACCOUNT, "alice", "bad", document)
    assert await service.list_user_policies(ACCOUNT, "alice") == []


async def test_policy_names_are_validated(service: IdentityService) -> None:
    await service.create_user(ACCOUNT, "alice")
    with pytest.raises(InvalidPolicyName):
        await service.put_user_policy(ACCOUNT, "alice", "no spaces", PULL_ONLY)


async def test_identity_policies_of_a_principal(service: IdentityService) -> None:
    alice = await service.create_user(ACCOUNT, "alice")
    await service.put_user_policy(ACCOUNT, "alice", "b-pull", PULL_ONLY)
    await service.put_user_policy(ACCOUNT, "alice", "a-admin", ADMIN_POLICY)
    principal = user_principal(alice, "AKIAEXAMPLEEXAMPLE12")
    policies = await service.identity_policies(principal)
    assert [p.statements[0].actions for p in policies] == [
        ("*",),
        ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
    ]
    assert all(p.statements[0].effect is Effect.ALLOW for p in policies)
    # A change applies to the next call.
    await service.delete_user_policy(ACCOUNT, "alice", "a-admin")
    assert len(await service.identity_policies(principal)) == 1
    # Callers that are not users have none.
    assert await service.identity_policies(Principal(registry_id=ACCOUNT)) == []
    root = Principal(registry_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root")
    assert await service.identity_policies(root) == []


async def test_a_stored_policy_that_no_longer_parses_fails_closed(
    service: IdentityService, metadata: SqlMetadataStore
) -> None:
    alice = await service.create_user(ACCOUNT, "alice")
    async with metadata.transaction() as tx:
        # As if written by an older, laxer engine.
        await tx.put_user_policy(UserPolicy(alice.user_id, "legacy", '{"Statement": 5}'))
    with pytest.raises(AccessDenied, match="legacy"):
        await service.identity_policies(user_principal(alice, "AKIAEXAMPLEEXAMPLE12"))


async def test_init_admin_creates_account_user_policy_and_key(metadata: SqlMetadataStore) -> None:
    identities = service_on(metadata)
    result = await identities.init_admin(ACCOUNT, "team")
    assert result.created_account
    assert result.created_user
    assert result.account.name == "team"
    assert result.user.name == "admin"
    assert result.user.arn == f"arn:aws:iam::{ACCOUNT}:user/admin"
    [policy] = await identities.list_user_policies(ACCOUNT, "admin")
    assert (policy.name, policy.document) == (ADMIN_POLICY_NAME, ADMIN_POLICY)
    assert [k.access_key_id for k in await identities.list_access_keys(ACCOUNT, "admin")] == [
        result.key.access_key_id
    ]


async def test_init_admin_twice_refuses_unless_a_new_key_is_asked_for(
    metadata: SqlMetadataStore,
) -> None:
    identities = service_on(metadata)
    first = await identities.init_admin(ACCOUNT, "team")
    with pytest.raises(AdminAlreadyExists):
        await identities.init_admin(ACCOUNT, "team")
    # The admin's policies are the operator's: a new key leaves them alone.
    await identities.delete_user_policy(ACCOUNT, "admin", ADMIN_POLICY_NAME)
    again = await identities.init_admin(ACCOUNT, "other name", force_new_key=True)
    assert not again.created_account
    assert not again.created_user
    assert again.account == first.account
    assert again.user == first.user
    assert again.key.access_key_id != first.key.access_key_id
    assert await identities.list_user_policies(ACCOUNT, "admin") == []
    with pytest.raises(AccessKeyLimitExceeded):
        await identities.init_admin(ACCOUNT, "team", force_new_key=True)


async def test_init_admin_in_an_existing_account_keeps_it(metadata: SqlMetadataStore) -> None:
    identities = service_on(metadata)
    existing = await identities.create_account(ACCOUNT, "named before")
    result = await identities.init_admin(ACCOUNT, "ignored")
    assert not result.created_account
    assert result.account == existing


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    async with throwaway_database() as url:
        yield url


async def test_concurrent_inits_make_one_admin(shared_url: str) -> None:
    # Separate stores stand for separate processes (no shared in-process lock).
    stores = [await open_sql_metadata_store(shared_url) for _ in range(3)]
    try:
        outcomes = await asyncio.gather(
            *(service_on(store).init_admin(ACCOUNT, "team") for store in stores),
            return_exceptions=True,
        )
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert all(
            isinstance(o, AdminAlreadyExists) for o in outcomes if isinstance(o, BaseException)
        )
        assert len(await service_on(stores[0]).list_access_keys(ACCOUNT, "admin")) == 1
    finally:
        for store in stores:
            await store.close()
