"""The IdentityRecords contract (``moorage.ports.identities``), run against every adapter.

Identity records live in the metadata transaction, so an adapter runs this suite the way it
runs ``metadata_suite``: subclass :class:`IdentityRecordsSuite`, provide a ``bare_store``
fixture (an open, empty store) and :meth:`IdentityRecordsSuite.leftovers`. Every test must
leave the store empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest

from moorage.domain.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    UserAlreadyExists,
    UserNotFound,
)
from moorage.domain.identities import (
    AccessKey,
    AccessKeyStatus,
    Account,
    User,
    UserPolicy,
    new_access_key_id,
    new_user_id,
)
from moorage.ports.metadata import MetadataStore

REGISTRY = "123456789012"
OTHER_REGISTRY = "210987654321"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
DENY_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}'


def account(registry_id: str = REGISTRY, name: str = "team") -> Account:
    return Account(registry_id=registry_id, name=name, created_at=T0)


def user(name: str = "alice", registry_id: str = REGISTRY, path: str = "/") -> User:
    return User(user_id=new_user_id(), registry_id=registry_id, name=name, created_at=T0, path=path)


def access_key(
    owner: User, *, created_at: datetime = T0, secret: bytes = b"\x00sealed"
) -> AccessKey:
    return AccessKey(
        access_key_id=new_access_key_id(),
        user_id=owner.user_id,
        secret_ciphertext=secret,
        status=AccessKeyStatus.ACTIVE,
        created_at=created_at,
    )


async def create_account(store: MetadataStore, registry_id: str = REGISTRY) -> Account:
    created = account(registry_id)
    async with store.transaction() as tx:
        await tx.create_account(created)
    return created


async def create_user(
    store: MetadataStore, name: str = "alice", registry_id: str = REGISTRY
) -> User:
    created = user(name, registry_id)
    async with store.transaction() as tx:
        await tx.create_user(created)
    return created


async def delete_accounts(store: MetadataStore, *registry_ids: str) -> None:
    async with store.transaction() as tx:
        for registry_id in registry_ids:
            await tx.delete_account(registry_id)


class IdentityRecordsSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        """What ``store`` still holds: a count per kind of record."""
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the test left records in the store: {remaining}"

    # -- accounts -----------------------------------------------------------------------

    async def test_create_get_and_list_accounts(self, store: MetadataStore) -> None:
        second = await create_account(store, OTHER_REGISTRY)
        first = await create_account(store, REGISTRY)
        async with store.read() as tx:
            assert await tx.get_account(REGISTRY) == first
            assert await tx.get_account("999999999999") is None
            assert await tx.list_accounts() == [first, second]
        await delete_accounts(store, REGISTRY, OTHER_REGISTRY)

    async def test_create_account_twice_raises_and_keeps_the_first(
        self, store: MetadataStore
    ) -> None:
        first = await create_account(store)
        async with store.transaction() as tx:
            with pytest.raises(AccountAlreadyExists):
                await tx.create_account(account(name="impostor"))
            # The transaction stays usable after the conflict (PostgreSQL would abort it).
            assert await tx.get_account(REGISTRY) == first
        await delete_accounts(store, REGISTRY)

    async def test_delete_account_cascades_to_users_keys_and_policies(
        self, store: MetadataStore
    ) -> None:
        await create_account(store)
        await create_account(store, OTHER_REGISTRY)
        alice = await create_user(store)
        kept = await create_user(store, "alice", OTHER_REGISTRY)
        key = access_key(alice)
        async with store.transaction() as tx:
            await tx.create_access_key(key)
            await tx.put_user_policy(UserPolicy(alice.user_id, "all", ALLOW_ALL))
        async with store.transaction() as tx:
            assert await tx.delete_account(REGISTRY) is True
            assert await tx.delete_account(REGISTRY) is False
        async with store.read() as tx:
            assert await tx.get_user_by_id(alice.user_id) is None
            assert await tx.get_access_key(key.access_key_id) is None
            assert await tx.list_user_policies(alice.user_id) == []
            assert await tx.get_user_by_id(kept.user_id) == kept
        await delete_accounts(store, OTHER_REGISTRY)

    # -- users --------------------------------------------------------------------------

    async def test_create_and_get_user(self, store: MetadataStore) -> None:
        await create_account(store)
        created = user("ci-bot", path="/machines/")
        async with store.transaction() as tx:
            await tx.create_user(created)
        async with store.read() as tx:
            assert await tx.get_user(REGISTRY, "ci-bot") == created
            assert await tx.get_user_by_id(created.user_id) == created
            assert await tx.get_user(REGISTRY, "CI-BOT") is None
            assert await tx.get_user(OTHER_REGISTRY, "ci-bot") is None
            assert await tx.get_user_by_id(new_user_id()) is None
        assert created.arn == f"arn:aws:iam::{REGISTRY}:user/machines/ci-bot"
        await delete_accounts(store, REGISTRY)

    async def test_user_timestamps_come_back_in_utc(self, store: MetadataStore) -> None:
        await create_account(store)
        eastern = timezone(timedelta(hours=-5))
        created = User(new_user_id(), REGISTRY, "alice", T0.astimezone(eastern))
        async with store.transaction() as tx:
            await tx.create_user(created)
        async with store.read() as tx:
            found = await tx.get_user_by_id(created.user_id)
        assert found is not None
        assert found.created_at == T0
        assert found.created_at.utcoffset() == timedelta(0)
        await delete_accounts(store, REGISTRY)

    async def test_user_name_is_unique_per_account(self, store: MetadataStore) -> None:
        await create_account(store)
        await create_account(store, OTHER_REGISTRY)
        first = await create_user(store, "alice")
        async with store.transaction() as tx:
            with pytest.raises(UserAlreadyExists):
                await tx.create_user(user("alice"))
            assert await tx.get_user(REGISTRY, "alice") == first
            # The same name in another account is another user.
            await tx.create_user(user("alice", OTHER_REGISTRY))
        await delete_accounts(store, REGISTRY, OTHER_REGISTRY)

    async def test_create_user_in_an_unknown_account_raises(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            with pytest.raises(AccountNotFound):
                await tx.create_user(user("alice"))
            assert await tx.list_users(REGISTRY) == []

    async def test_list_users_by_name_in_binary_order(self, store: MetadataStore) -> None:
        await create_account(store)
        await create_account(store, OTHER_REGISTRY)
        for name in ["bob", "Bob", "alice", "a.b", "a-b", "a_b"]:
            await create_user(store, name)
        await create_user(store, "zed", OTHER_REGISTRY)
        async with store.read() as tx:
            names = [u.name for u in await tx.list_users(REGISTRY)]
            assert [u.name for u in await tx.list_users(OTHER_REGISTRY)] == ["zed"]
            assert await tx.list_users("999999999999") == []
        assert names == ["Bob", "a-b", "a.b", "a_b", "alice", "bob"]
        await delete_accounts(store, REGISTRY, OTHER_REGISTRY)

    async def test_delete_user_cascades_to_its_keys_and_policies(
        self, store: MetadataStore
    ) -> None:
        await create_account(store)
        alice = await create_user(store, "alice")
        bob = await create_user(store, "bob")
        alice_key, bob_key = access_key(alice), access_key(bob)
        async with store.transaction() as tx:
            await tx.create_access_key(alice_key)
            await tx.create_access_key(bob_key)
            await tx.put_user_policy(UserPolicy(alice.user_id, "all", ALLOW_ALL))
            await tx.put_user_policy(UserPolicy(bob.user_id, "all", ALLOW_ALL))
        async with store.transaction() as tx:
            assert await tx.delete_user(alice.user_id) is True
            assert await tx.delete_user(alice.user_id) is False
        async with store.read() as tx:
            assert await tx.get_user(REGISTRY, "alice") is None
            assert await tx.get_access_key(alice_key.access_key_id) is None
            assert await tx.get_user_policy(alice.user_id, "all") is None
            assert await tx.get_access_key(bob_key.access_key_id) == bob_key
            assert await tx.get_user_policy(bob.user_id, "all") is not None
        await delete_accounts(store, REGISTRY)

    async def test_concurrent_creates_of_one_user_name_let_one_win(
        self, store: MetadataStore
    ) -> None:
        await create_account(store)

        async def attempt() -> bool:
            try:
                async with store.transaction() as tx:
                    if await tx.get_user(REGISTRY, "alice") is not None:
                        return False
                    await asyncio.sleep(0)
                    await tx.create_user(user("alice"))
            except UserAlreadyExists:
                return False
            return True

        results = await asyncio.gather(*(attempt() for _ in range(4)))
        assert results.count(True) == 1
        async with store.read() as tx:
            assert len(await tx.list_users(REGISTRY)) == 1
        await delete_accounts(store, REGISTRY)

    # -- access keys --------------------------------------------------------------------

    async def test_create_get_and_list_access_keys(self, store: MetadataStore) -> None:
        await create_account(store)
        alice = await create_user(store)
        newer = access_key(alice, created_at=T0 + timedelta(seconds=1), secret=b"\x01\x02")
        older = access_key(alice, secret=bytes(range(256)))
        async with store.transaction() as tx:
            await tx.create_access_key(newer)
            await tx.create_access_key(older)
        async with store.read() as tx:
            assert await tx.get_access_key(older.access_key_id) == older
            assert await tx.get_access_key(new_access_key_id()) is None
            assert await tx.list_access_keys(alice.user_id) == [older, newer]
            assert await tx.list_access_keys(new_user_id()) == []
        await delete_accounts(store, REGISTRY)

    async def test_access_key_for_an_unknown_user_raises(self, store: MetadataStore) -> None:
        ghost = user("ghost")
        async with store.transaction() as tx:
            with pytest.raises(UserNotFound):
                await tx.create_access_key(access_key(ghost))
            assert await tx.list_access_keys(ghost.user_id) == []

    async def test_set_status_and_delete_access_key(self, store: MetadataStore) -> None:
        await create_account(store)
        alice = await create_user(store)
        key = access_key(alice)
        async with store.transaction() as tx:
            await tx.create_access_key(key)
        async with store.transaction() as tx:
            assert await tx.set_access_key_status(key.access_key_id, AccessKeyStatus.INACTIVE)
            assert not await tx.set_access_key_status(new_access_key_id(), AccessKeyStatus.ACTIVE)
        async with store.read() as tx:
            found = await tx.get_access_key(key.access_key_id)
        assert found is not None
        assert found.status is AccessKeyStatus.INACTIVE
        async with store.transaction() as tx:
            assert await tx.delete_access_key(key.access_key_id) is True
            assert await tx.delete_access_key(key.access_key_id) is False
            assert await tx.list_access_keys(alice.user_id) == []
        await delete_accounts(store, REGISTRY)

    # -- inline user policies -----------------------------------------------------------

    async def test_put_user_policy_inserts_then_replaces(self, store: MetadataStore) -> None:
        await create_account(store)
        alice = await create_user(store)
        async with store.transaction() as tx:
            await tx.put_user_policy(UserPolicy(alice.user_id, "main", ALLOW_ALL))
        async with store.transaction() as tx:
            await tx.put_user_policy(UserPolicy(alice.user_id, "main", DENY_ALL))
        async with store.read() as tx:
            assert await tx.get_user_policy(alice.user_id, "main") == UserPolicy(
                alice.user_id, "main", DENY_ALL
            )
            assert await tx.get_user_policy(alice.user_id, "MAIN") is None
            assert len(await tx.list_user_policies(alice.user_id)) == 1
        await delete_accounts(store, REGISTRY)

    async def test_policy_documents_are_stored_exactly(self, store: MetadataStore) -> None:
        await create_account(store)
        alice = await create_user(store)
        document = '{\n  "Statement": [ {"Effect": "Allow", "Action": "ecr:*", "Resource": "*",\n'
        document += ' "Sid": "caf\u00e9 \u2603"} ]\n}\n'
        async with store.transaction() as tx:
            await tx.put_user_policy(UserPolicy(alice.user_id, "exact", document))
        async with store.read() as tx:
            found = await tx.get_user_policy(alice.user_id, "exact")
        assert found is not None
        assert found.document == document
        await delete_accounts(store, REGISTRY)

    async def test_list_and_delete_user_policies(self, store: MetadataStore) -> None:
        await create_account(store)
        alice = await create_user(store)
        bob = await create_user(store, "bob")
        async with store.transaction() as tx:
            for name in ["pull", "Push", "admin"]:
                await tx.put_user_policy(UserPolicy(alice.user_id, name, ALLOW_ALL))
            await tx.put_user_policy(UserPolicy(bob.user_id, "other", DENY_ALL))
        async with store.read() as tx:
            listed = await tx.list_user_policies(alice.user_id)
        assert [p.name for p in listed] == ["Push", "admin", "pull"]
        assert {p.document for p in listed} == {ALLOW_ALL}
        async with store.transaction() as tx:
            assert await tx.delete_user_policy(alice.user_id, "admin") is True
            assert await tx.delete_user_policy(alice.user_id, "admin") is False
            assert await tx.delete_user_policy(alice.user_id, "other") is False
            assert [p.name for p in await tx.list_user_policies(alice.user_id)] == ["Push", "pull"]
        await delete_accounts(store, REGISTRY)

    async def test_policy_for_an_unknown_user_raises(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            with pytest.raises(UserNotFound):
                await tx.put_user_policy(UserPolicy(new_user_id(), "all", ALLOW_ALL))

    async def test_rolled_back_identities_leave_nothing(self, store: MetadataStore) -> None:
        async def create_then_fail() -> None:
            async with store.transaction() as tx:
                await tx.create_account(account())
                alice = user("alice")
                await tx.create_user(alice)
                await tx.create_access_key(access_key(alice))
                await tx.put_user_policy(UserPolicy(alice.user_id, "all", ALLOW_ALL))
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError, match="roll back"):
            await create_then_fail()
        async with store.read() as tx:
            assert await tx.list_accounts() == []
