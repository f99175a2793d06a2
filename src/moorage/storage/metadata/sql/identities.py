"""The IdentityRecords port on SQL: a mixin of the store's transaction (``store.py``).

``SqlIdentityRecords`` runs its statements on ``self._c``, the transaction's connection, so
identity writes share the unit of work of everything else. As in ``store.py``, inserts that
can lose a race (a user name taken, an account created twice) use ``ON CONFLICT DO NOTHING``
and report the conflict from the row count: an integrity error would abort a PostgreSQL
transaction. Rows that need a parent (a user's account, a key's user) are inserted from a
``SELECT`` of that parent, so a missing parent inserts nothing instead of breaking a foreign
key, and the method raises the domain's "not found".

The statements that every authenticated request runs (a key and its user by id, a user's
policies) are built once, like the pull path's in ``store.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, bindparam, delete, literal, select, update

from moorage.domain.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    UserAlreadyExists,
    UserNotFound,
)
from moorage.domain.identities import AccessKey, AccessKeyStatus, Account, User, UserPolicy
from moorage.storage.metadata.sql.tables import (
    UtcDateTime,
    access_keys,
    accounts,
    iam_users,
    user_policies,
)

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

_GET_ACCESS_KEY = select(access_keys).where(
    access_keys.c.access_key_id == bindparam("access_key_id")
)
_GET_USER_BY_ID = select(iam_users).where(iam_users.c.user_id == bindparam("user_id"))
_LIST_USER_POLICIES = (
    select(user_policies)
    .where(user_policies.c.user_id == bindparam("user_id"))
    .order_by(user_policies.c.name)
)


class SqlIdentityRecords:
    """Identity records on the transaction's connection ``_c``; ``_insert`` is the dialect's
    INSERT (with ``on_conflict_*``). Both are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory

    # -- accounts -----------------------------------------------------------------------

    async def create_account(self, account: Account) -> None:
        statement = (
            self._insert(accounts)
            .values(
                registry_id=account.registry_id,
                name=account.name,
                created_at=account.created_at,
            )
            .on_conflict_do_nothing(index_elements=["registry_id"])
        )
        if not (await self._c.execute(statement)).rowcount:
            raise AccountAlreadyExists(
                f"account {account.registry_id} already exists",
                detail={"registry_id": account.registry_id},
            )

    async def get_account(self, registry_id: str) -> Account | None:
        query = select(accounts).where(accounts.c.registry_id == registry_id)
        row = (await self._c.execute(query)).first()
        return None if row is None else _account(row)

    async def list_accounts(self) -> list[Account]:
        query = select(accounts).order_by(accounts.c.registry_id)
        return [_account(row) for row in await self._c.execute(query)]

    async def delete_account(self, registry_id: str) -> bool:
        # Foreign keys cascade to its users, and from them to keys and policies.
        statement = delete(accounts).where(accounts.c.registry_id == registry_id)
        return bool((await self._c.execute(statement)).rowcount)

    # -- users --------------------------------------------------------------------------

    async def create_user(self, user: User) -> None:
        source = select(
            literal(user.user_id),
            accounts.c.registry_id,
            literal(user.name),
            literal(user.path),
            literal(user.created_at, UtcDateTime()),
        ).where(accounts.c.registry_id == user.registry_id)
        statement = (
            self._insert(iam_users)
            .from_select(["user_id", "registry_id", "name", "path", "created_at"], source)
            .on_conflict_do_nothing(index_elements=["registry_id", "name"])
        )
        if (await self._c.execute(statement)).rowcount:
            return
        if await self.get_account(user.registry_id) is None:
            raise AccountNotFound(
                f"account {user.registry_id} does not exist",
                detail={"registry_id": user.registry_id},
            )
        raise UserAlreadyExists(
            f"User with name {user.name} already exists.", detail={"name": user.name}
        )

    async def get_user(self, registry_id: str, name: str) -> User | None:
        query = select(iam_users).where(
            iam_users.c.registry_id == registry_id, iam_users.c.name == name
        )
        row = (await self._c.execute(query)).first()
        return None if row is None else _user(row)

    async def get_user_by_id(self, user_id: str) -> User | None:
        row = (await self._c.execute(_GET_USER_BY_ID, {"user_id": user_id})).first()
        return None if row is None else _user(row)

    async def list_users(self, registry_id: str) -> list[User]:
        query = (
            select(iam_users)
            .where(iam_users.c.registry_id == registry_id)
            .order_by(iam_users.c.name)
        )
        return [_user(row) for row in await self._c.execute(query)]

    async def delete_user(self, user_id: str) -> bool:
        # Foreign keys cascade to its access keys and policies.
        statement = delete(iam_users).where(iam_users.c.user_id == user_id)
        return bool((await self._c.execute(statement)).rowcount)

    # -- access keys --------------------------------------------------------------------

    async def create_access_key(self, key: AccessKey) -> None:
        # A clash of random 80-bit key ids is not a case to handle: it raises IntegrityError.
        source = select(
            literal(key.access_key_id),
            iam_users.c.user_id,
            literal(key.secret_ciphertext),
            literal(key.status.value),
            literal(key.created_at, UtcDateTime()),
        ).where(iam_users.c.user_id == key.user_id)
        statement = access_keys.insert().from_select(
            ["access_key_id", "user_id", "secret_ciphertext", "status", "created_at"], source
        )
        if not (await self._c.execute(statement)).rowcount:
            raise _user_not_found(key.user_id)

    async def get_access_key(self, access_key_id: str) -> AccessKey | None:
        parameters = {"access_key_id": access_key_id}
        row = (await self._c.execute(_GET_ACCESS_KEY, parameters)).first()
        return None if row is None else _access_key(row)

    async def list_access_keys(self, user_id: str) -> list[AccessKey]:
        query = (
            select(access_keys)
            .where(access_keys.c.user_id == user_id)
            .order_by(access_keys.c.created_at, access_keys.c.access_key_id)
        )
        return [_access_key(row) for row in await self._c.execute(query)]

    async def set_access_key_status(self, access_key_id: str, status: AccessKeyStatus) -> bool:
        statement = (
            update(access_keys)
            .where(access_keys.c.access_key_id == access_key_id)
            .values(status=status.value)
        )
        return bool((await self._c.execute(statement)).rowcount)

    async def delete_access_key(self, access_key_id: str) -> bool:
        statement = delete(access_keys).where(access_keys.c.access_key_id == access_key_id)
        return bool((await self._c.execute(statement)).rowcount)

    # -- inline user policies -----------------------------------------------------------

    async def put_user_policy(self, policy: UserPolicy) -> None:
        source = select(iam_users.c.user_id, literal(policy.name), literal(policy.document)).where(
            iam_users.c.user_id == policy.user_id
        )
        insert = self._insert(user_policies).from_select(["user_id", "name", "document"], source)
        statement = insert.on_conflict_do_update(
            index_elements=["user_id", "name"], set_={"document": insert.excluded.document}
        )
        if not (await self._c.execute(statement)).rowcount:
            raise _user_not_found(policy.user_id)

    async def get_user_policy(self, user_id: str, name: str) -> UserPolicy | None:
        query = select(user_policies).where(
            user_policies.c.user_id == user_id, user_policies.c.name == name
        )
        row = (await self._c.execute(query)).first()
        return None if row is None else _user_policy(row)

    async def list_user_policies(self, user_id: str) -> list[UserPolicy]:
        rows = await self._c.execute(_LIST_USER_POLICIES, {"user_id": user_id})
        return [_user_policy(row) for row in rows]

    async def delete_user_policy(self, user_id: str, name: str) -> bool:
        statement = delete(user_policies).where(
            user_policies.c.user_id == user_id, user_policies.c.name == name
        )
        return bool((await self._c.execute(statement)).rowcount)


def _user_not_found(user_id: str) -> UserNotFound:
    return UserNotFound(f"user {user_id} does not exist", detail={"user_id": user_id})


def _account(row: Row[Any]) -> Account:
    return Account(registry_id=row.registry_id, name=row.name, created_at=row.created_at)


def _user(row: Row[Any]) -> User:
    return User(
        user_id=row.user_id,
        registry_id=row.registry_id,
        name=row.name,
        path=row.path,
        created_at=row.created_at,
    )


def _access_key(row: Row[Any]) -> AccessKey:
    return AccessKey(
        access_key_id=row.access_key_id,
        user_id=row.user_id,
        secret_ciphertext=bytes(row.secret_ciphertext),
        status=AccessKeyStatus(row.status),
        created_at=row.created_at,
    )


def _user_policy(row: Row[Any]) -> UserPolicy:
    return UserPolicy(user_id=row.user_id, name=row.name, document=row.document)
