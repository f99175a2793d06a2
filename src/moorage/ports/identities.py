"""The identity records port: accounts, IAM users, access keys and inline user policies.

Part of every metadata transaction (``MetadataTransaction`` includes :class:`IdentityRecords`),
so that a user, its first key and its policy commit together. The model is described in
``moorage.domain.identities``; the SQL schema in ``storage/metadata/sql/tables.py``.

Ownership and deletion: an account owns its users, a user its access keys and policies;
deleting the owner deletes what it owns. Access key ids and user ids are unique across all
accounts (an access key id alone identifies the caller of a signed request).

Values are stored as given: callers validate names and ids (``domain/identities.py``)
before they come here. Lists are ordered as documented per method, names bytewise.
"""

from __future__ import annotations

from typing import Protocol

from moorage.domain.identities import (
    AccessKey,
    AccessKeyStatus,
    Account,
    User,
    UserPolicy,
)


class IdentityRecords(Protocol):
    # -- accounts -----------------------------------------------------------------------
    async def create_account(self, account: Account) -> None:
        """Record an account. Raises AccountAlreadyExists when its registry id is taken."""
        ...

    async def get_account(self, registry_id: str) -> Account | None: ...

    async def list_accounts(self) -> list[Account]:
        """Every account, by registry id."""
        ...

    async def delete_account(self, registry_id: str) -> bool:
        """Delete an account with its users (and their keys and policies); False when absent.

        Repositories are not identities and stay.
        """
        ...

    # -- users --------------------------------------------------------------------------
    async def create_user(self, user: User) -> None:
        """Record a user. Raises UserAlreadyExists when the account already has a user of that
        name (or, improbably, the user id is taken), AccountNotFound when the account is not
        recorded."""
        ...

    async def get_user(self, registry_id: str, name: str) -> User | None: ...

    async def get_user_by_id(self, user_id: str) -> User | None: ...

    async def list_users(self, registry_id: str) -> list[User]:
        """The account's users, by name."""
        ...

    async def delete_user(self, user_id: str) -> bool:
        """Delete a user with its access keys and policies; False when absent."""
        ...

    # -- access keys --------------------------------------------------------------------
    async def create_access_key(self, key: AccessKey) -> None:
        """Record an access key. Raises UserNotFound when its user is not recorded.

        The per-user quota is the caller's to check (``list_access_keys`` in the same
        transaction).
        """
        ...

    async def get_access_key(self, access_key_id: str) -> AccessKey | None: ...

    async def list_access_keys(self, user_id: str) -> list[AccessKey]:
        """The user's keys, oldest first."""
        ...

    async def set_access_key_status(self, access_key_id: str, status: AccessKeyStatus) -> bool:
        """Activate or deactivate a key; False when there is no such key."""
        ...

    async def delete_access_key(self, access_key_id: str) -> bool:
        """False when there is no such key."""
        ...

    # -- inline user policies -----------------------------------------------------------
    async def put_user_policy(self, policy: UserPolicy) -> None:
        """Insert the policy, or replace the document of the user's policy of that name.

        Raises UserNotFound when the user is not recorded.
        """
        ...

    async def get_user_policy(self, user_id: str, name: str) -> UserPolicy | None: ...

    async def list_user_policies(self, user_id: str) -> list[UserPolicy]:
        """The user's policies with their documents, by name."""
        ...

    async def delete_user_policy(self, user_id: str, name: str) -> bool:
        """False when the user has no policy of that name."""
        ...
