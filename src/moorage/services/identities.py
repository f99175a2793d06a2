"""Identities: accounts, IAM users, access keys and inline identity policies.

The service validates names (``domain/identities.py``), generates ids and secrets, encrypts
secret access keys before they reach storage (``iam/secrets.py``), validates policy
documents with the policy engine, and answers "which identity policies apply to this
caller?" for authorization.

A secret access key is returned once, by :meth:`IdentityService.create_access_key` (and
``init_admin``), and only its ciphertext is kept. Messages follow IAM's wording where IAM
has one ("The user with name alice cannot be found.").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from moorage.domain.errors import (
    AccessDenied,
    AccessKeyLimitExceeded,
    AccessKeyNotFound,
    AccountAlreadyExists,
    AccountNotFound,
    AdminAlreadyExists,
    MalformedPolicyDocument,
    UserAlreadyExists,
    UserNotFound,
    UserPolicyNotFound,
)
from moorage.domain.identities import (
    MAX_ACCESS_KEYS_PER_USER,
    MAX_POLICY_DOCUMENT_LENGTH,
    AccessKey,
    AccessKeyStatus,
    Account,
    AccountId,
    NewAccessKey,
    PolicyName,
    User,
    UserName,
    UserPolicy,
    account_name,
    new_access_key_id,
    new_secret_access_key,
    new_user_id,
    user_path,
)
from moorage.iam.policy import Policy, PolicyInvalid, parse_policy
from moorage.iam.secrets import MasterKeyError, SecretCipher
from moorage.ports.access import Principal
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction

log = logging.getLogger("moorage.iam")

ADMIN_USER = "admin"
ADMIN_POLICY_NAME = "AdministratorAccess"
ADMIN_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
)


@dataclass(frozen=True, slots=True)
class AdminInit:
    """What ``init_admin`` did: the account and admin user (created now or found), and the
    new key, whose secret is shown to the operator once."""

    account: Account
    user: User
    key: NewAccessKey
    created_account: bool
    created_user: bool


class IdentityService:
    def __init__(self, metadata: MetadataStore, cipher: SecretCipher, clock: Clock) -> None:
        self._metadata = metadata
        self._cipher = cipher
        self._clock = clock

    # -- accounts -----------------------------------------------------------------------

    async def create_account(self, registry_id: str, name: str) -> Account:
        """Raises InvalidAccount, AccountAlreadyExists."""
        account = Account(AccountId(registry_id), account_name(name), self._clock())
        async with self._metadata.transaction() as tx:
            await tx.create_account(account)
        return account

    async def get_account(self, registry_id: str) -> Account:
        """Raises AccountNotFound."""
        async with self._metadata.read() as tx:
            return await _require_account(tx, registry_id)

    async def list_accounts(self) -> list[Account]:
        async with self._metadata.read() as tx:
            return await tx.list_accounts()

    # -- users --------------------------------------------------------------------------

    async def create_user(self, registry_id: str, name: str, *, path: str = "/") -> User:
        """Raises InvalidUserName, AccountNotFound, UserAlreadyExists."""
        user = User(
            user_id=new_user_id(),
            registry_id=registry_id,
            name=UserName(name),
            created_at=self._clock(),
            path=user_path(path),
        )
        async with self._metadata.transaction() as tx:
            await tx.create_user(user)
        return user

    async def get_user(self, registry_id: str, name: str) -> User:
        """Raises UserNotFound."""
        async with self._metadata.read() as tx:
            return await _require_user(tx, registry_id, name)

    async def list_users(self, registry_id: str) -> list[User]:
        """The account's users by name. Raises AccountNotFound."""
        async with self._metadata.read() as tx:
            await _require_account(tx, registry_id)
            return await tx.list_users(registry_id)

    async def delete_user(self, registry_id: str, name: str) -> User:
        """Delete a user with its access keys and policies (IAM would insist they be deleted
        first; here the user goes, and everything it owns with it). Raises UserNotFound."""
        async with self._metadata.transaction() as tx:
            user = await _require_user(tx, registry_id, name)
            await tx.delete_user(user.user_id)
            return user

    # -- access keys --------------------------------------------------------------------

    async def create_access_key(self, registry_id: str, user_name: str) -> NewAccessKey:
        """A new active key for the user, with its secret in clear: the only time it is
        available. Raises UserNotFound, AccessKeyLimitExceeded (two keys per user, as IAM),
        MasterKeyError when the stored keys were encrypted under another master key."""
        async with self._metadata.transaction() as tx:
            user = await _require_user(tx, registry_id, user_name)
            return await self._create_access_key(tx, user)

    async def _create_access_key(self, tx: MetadataTransaction, user: User) -> NewAccessKey:
        await self._check_master_key(tx)
        if len(await tx.list_access_keys(user.user_id)) >= MAX_ACCESS_KEYS_PER_USER:
            raise AccessKeyLimitExceeded(
                f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}",
                detail={"user": user.name},
            )
        access_key_id = new_access_key_id()
        secret = new_secret_access_key()
        key = AccessKey(
            access_key_id=access_key_id,
            user_id=user.user_id,
            # Bound to its key id: a ciphertext moved to another row does not decrypt.
            secret_ciphertext=self._cipher.encrypt(secret, access_key_id),
            status=AccessKeyStatus.ACTIVE,
            created_at=self._clock(),
        )
        await tx.create_access_key(key)
        return NewAccessKey(key=key, secret_access_key=secret)

    async def _check_master_key(self, tx: MetadataTransaction) -> None:
        """Refuse to store a secret under another master key than the stored ones.

        A command run on a host without the servers' key (PostgreSQL, no ``master_key``
        setting) would otherwise create keys that no server can use. Checks one stored key,
        the first found; a handful of reads, and only when a key is created.
        """
        for account in await tx.list_accounts():
            for user in await tx.list_users(account.registry_id):
                for key in await tx.list_access_keys(user.user_id):
                    if self._cipher.encrypted_by_this_key(key.secret_ciphertext):
                        return
                    raise MasterKeyError(
                        "the master key differs from the one the stored access keys were "
                        "encrypted with: set master_key (MOORAGE_MASTER_KEY) to the servers' key"
                    )

    async def list_access_keys(self, registry_id: str, user_name: str) -> list[AccessKey]:
        """The user's keys, oldest first (ciphertexts only). Raises UserNotFound."""
        async with self._metadata.read() as tx:
            user = await _require_user(tx, registry_id, user_name)
            return await tx.list_access_keys(user.user_id)

    async def set_access_key_status(
        self, registry_id: str, user_name: str, access_key_id: str, status: AccessKeyStatus
    ) -> AccessKey:
        """Activate or deactivate one of the user's keys; an inactive key authenticates
        nothing, and login tokens it obtained stop working. Raises UserNotFound,
        AccessKeyNotFound (also when the key belongs to someone else)."""
        async with self._metadata.transaction() as tx:
            key = await _require_key(tx, registry_id, user_name, access_key_id)
            await tx.set_access_key_status(key.access_key_id, status)
            return AccessKey(
                key.access_key_id, key.user_id, key.secret_ciphertext, status, key.created_at
            )

    async def deactivate_access_key(
        self, registry_id: str, user_name: str, access_key_id: str
    ) -> AccessKey:
        return await self.set_access_key_status(
            registry_id, user_name, access_key_id, AccessKeyStatus.INACTIVE
        )

    async def activate_access_key(
        self, registry_id: str, user_name: str, access_key_id: str
    ) -> AccessKey:
        return await self.set_access_key_status(
            registry_id, user_name, access_key_id, AccessKeyStatus.ACTIVE
        )

    async def delete_access_key(self, registry_id: str, user_name: str, access_key_id: str) -> None:
        """Raises UserNotFound, AccessKeyNotFound (also when the key belongs to someone else)."""
        async with self._metadata.transaction() as tx:
            key = await _require_key(tx, registry_id, user_name, access_key_id)
            await tx.delete_access_key(key.access_key_id)

    # -- inline user policies -----------------------------------------------------------

    async def put_user_policy(
        self, registry_id: str, user_name: str, policy_name: str, document: str
    ) -> UserPolicy:
        """Attach (or replace) an inline identity policy. Raises InvalidPolicyName,
        MalformedPolicyDocument (with the policy engine's reason), UserNotFound."""
        name = PolicyName(policy_name)
        _parse_document(document)
        async with self._metadata.transaction() as tx:
            user = await _require_user(tx, registry_id, user_name)
            policy = UserPolicy(user.user_id, name, document)
            await tx.put_user_policy(policy)
            return policy

    async def get_user_policy(
        self, registry_id: str, user_name: str, policy_name: str
    ) -> UserPolicy:
        """Raises UserNotFound, UserPolicyNotFound."""
        async with self._metadata.read() as tx:
            user = await _require_user(tx, registry_id, user_name)
            policy = await tx.get_user_policy(user.user_id, policy_name)
        if policy is None:
            raise _policy_not_found(policy_name)
        return policy

    async def list_user_policies(self, registry_id: str, user_name: str) -> list[UserPolicy]:
        """The user's inline policies by name. Raises UserNotFound."""
        async with self._metadata.read() as tx:
            user = await _require_user(tx, registry_id, user_name)
            return await tx.list_user_policies(user.user_id)

    async def delete_user_policy(self, registry_id: str, user_name: str, policy_name: str) -> None:
        """Raises UserNotFound, UserPolicyNotFound."""
        async with self._metadata.transaction() as tx:
            user = await _require_user(tx, registry_id, user_name)
            if not await tx.delete_user_policy(user.user_id, policy_name):
                raise _policy_not_found(policy_name)

    # -- authorization ------------------------------------------------------------------

    async def identity_policies(self, principal: Principal) -> list[Policy]:
        """The parsed identity policies of the caller, read afresh on every call (a policy
        change applies to the next request). Principals that are not IAM users (anonymous,
        an account root) have none.

        Parsing is cached by document text, which is always correct: the same text parses
        to the same policy. A stored document that no longer parses (a stricter engine
        after an upgrade) fails closed: AccessDenied, naming the policy, and an error log.
        """
        if principal.user_id is None:
            return []
        async with self._metadata.read() as tx:
            stored = await tx.list_user_policies(principal.user_id)
        policies: list[Policy] = []
        for policy in stored:
            try:
                policies.append(_parse_identity_policy(policy.document))
            except PolicyInvalid as exc:
                log.error(
                    "identity policy %r of %s does not parse (%s): denying its requests",
                    policy.name,
                    principal.arn,
                    exc,
                )
                raise AccessDenied(
                    f"The identity policy '{policy.name}' of {principal.arn} is not valid; "
                    "an administrator must replace it"
                ) from None
        return policies

    # -- bootstrap ----------------------------------------------------------------------

    async def init_admin(
        self, registry_id: str, name: str, *, force_new_key: bool = False
    ) -> AdminInit:
        """Set up an account for its first use, in one transaction: the account (unless it
        exists), a user ``admin`` with the inline policy ``AdministratorAccess`` (Allow
        ``*`` on ``*``), and an access key for it.

        When the account already has a user ``admin``: raises AdminAlreadyExists, unless
        ``force_new_key``, which gives that user one more key and changes nothing else (its
        policies stay as they are). Raises InvalidAccount, AccessKeyLimitExceeded,
        MasterKeyError (see ``create_access_key``).
        """
        registry_id = AccountId(registry_id)
        now = self._clock()
        async with self._metadata.transaction() as tx:
            account = await tx.get_account(registry_id)
            created_account = account is None
            if account is None:
                account = Account(registry_id, account_name(name), now)
                try:
                    await tx.create_account(account)
                except AccountAlreadyExists:  # a concurrent init got there first
                    account = await _require_account(tx, registry_id)
                    created_account = False
            user = await tx.get_user(registry_id, ADMIN_USER)
            created_user = user is None
            if user is None:
                user = User(new_user_id(), registry_id, ADMIN_USER, now)
                try:
                    await tx.create_user(user)
                except UserAlreadyExists:
                    raise _admin_exists(registry_id) from None
                await tx.put_user_policy(UserPolicy(user.user_id, ADMIN_POLICY_NAME, ADMIN_POLICY))
            elif not force_new_key:
                raise _admin_exists(registry_id)
            key = await self._create_access_key(tx, user)
        return AdminInit(account, user, key, created_account, created_user)


@lru_cache(maxsize=1024)
def _parse_identity_policy(document: str) -> Policy:
    return parse_policy(document, kind="identity")


def _parse_document(document: str) -> Policy:
    if len(document) > MAX_POLICY_DOCUMENT_LENGTH:
        raise MalformedPolicyDocument(
            f"policy document is longer than {MAX_POLICY_DOCUMENT_LENGTH} characters"
        )
    try:
        return _parse_identity_policy(document)
    except PolicyInvalid as exc:
        raise MalformedPolicyDocument(str(exc)) from None


async def _require_account(tx: MetadataTransaction, registry_id: str) -> Account:
    account = await tx.get_account(registry_id)
    if account is None:
        raise AccountNotFound(
            f"account {registry_id} does not exist", detail={"registry_id": registry_id}
        )
    return account


async def _require_user(tx: MetadataTransaction, registry_id: str, name: str) -> User:
    user = await tx.get_user(registry_id, name)
    if user is None:
        raise UserNotFound(f"The user with name {name} cannot be found.", detail={"name": name})
    return user


async def _require_key(
    tx: MetadataTransaction, registry_id: str, user_name: str, access_key_id: str
) -> AccessKey:
    user = await _require_user(tx, registry_id, user_name)
    key = await tx.get_access_key(access_key_id)
    if key is None or key.user_id != user.user_id:
        raise AccessKeyNotFound(
            f"The Access Key with id {access_key_id} cannot be found.",
            detail={"access_key_id": access_key_id},
        )
    return key


def _policy_not_found(name: str) -> UserPolicyNotFound:
    return UserPolicyNotFound(
        f"The user policy with name {name} cannot be found.", detail={"name": name}
    )


def _admin_exists(registry_id: str) -> AdminAlreadyExists:
    return AdminAlreadyExists(
        f"account {registry_id} already has a user named {ADMIN_USER}",
        detail={"registry_id": registry_id},
    )
