"""The public address: ``/v2/<alias>/<repository>`` for the public registries (ECR Public's
``public.ecr.aws/<alias>/<repository>``), on a listener of its own (``public_port``).

It is the OCI Distribution API of ``/v2/`` with three differences:

* **Names.** A path's name is ``<alias>/<repository>``: the alias names the account's public
  registry (``OciServices.path_names``), the rest the repository in the public namespace.
  The services behind it act in that namespace only, so nothing private is reachable here:
  a private repository's name is simply unknown (NAME_UNKNOWN).
* **Anyone may pull.** Manifests, blobs, tags and referrers are readable without
  credentials, and ECR Public's rule holds that a repository policy cannot restrict a pull.
  Writes need a login (``aws ecr-public get-login-password``), authorized as the
  ``ecr-public:`` action of the same name on ECR Public's ARN. The token endpoint hands
  anonymous callers a token too, as ECR Public's does, so docker's token flow works.
* **Pull rates.** Manifest reads (what a pull is made of) are limited per client address for
  anonymous callers and per account for logged-in ones (``PullRates``), 429 TOOMANYREQUESTS
  with ``Retry-After`` past the limit, as ECR Public limits them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from moorage.domain.errors import PullRateExceeded, RepositoryNotFound, Unauthenticated
from moorage.iam.actions import Action
from moorage.ports.access import AccessRequest, Authenticator, Authorizer, Credentials, Principal
from moorage.protocols.oci.token import ANONYMOUS_TOKEN
from moorage.services.public import PublicRegistryService

# What anyone may do at the public address.
PULL_ACTIONS = frozenset(
    {
        Action.BATCH_GET_IMAGE,
        Action.GET_DOWNLOAD_URL_FOR_LAYER,
        Action.BATCH_CHECK_LAYER_AVAILABILITY,
        Action.LIST_IMAGES,
    }
)
# The anonymous caller: no account of its own (the path names the registry).
ANONYMOUS = Principal(registry_id="")


class PublicAddressAuthenticator:
    """Anonymous callers are welcome (no credentials, or the anonymous bearer token of the
    token endpoint); any other credentials are checked as on ``/v2/`` (``logins``)."""

    def __init__(self, logins: Authenticator) -> None:
        self._logins = logins

    async def authenticate(self, credentials: Credentials) -> Principal:
        authorization = credentials.authorization
        if authorization is None or authorization.strip() == f"Bearer {ANONYMOUS_TOKEN}":
            return ANONYMOUS
        return await self._logins.authenticate(credentials)


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """A token bucket per key (``burst`` tokens, refilled at ``rate`` a second), keeping at
    most ``max_keys`` keys, the least recently used forgotten first: memory stays bounded
    whatever the number of client addresses."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """Take a token for ``key``: 0 when it had one, else the seconds until it will."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket  # re-inserted: most recent last
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


class PullRates:
    """The pull limits of the public address: anonymous pulls per client address, logged-in
    pulls per account (higher, as ECR Public's are). A rate of 0 turns a limit off."""

    def __init__(
        self,
        *,
        anonymous_rate: float,
        anonymous_burst: float,
        authenticated_rate: float,
        authenticated_burst: float,
    ) -> None:
        self._anonymous = (
            TokenBuckets(anonymous_rate, anonymous_burst) if anonymous_rate > 0 else None
        )
        self._authenticated = (
            TokenBuckets(authenticated_rate, authenticated_burst)
            if authenticated_rate > 0
            else None
        )

    def check(self, caller: Principal, source_ip: str | None) -> None:
        """Count one pull; raises PullRateExceeded past the caller's limit."""
        if caller.is_anonymous:
            buckets, key, who = self._anonymous, f"ip:{source_ip}", "anonymous pulls from"
            subject = source_ip or "this address"
        else:
            buckets, key, who = self._authenticated, f"account:{caller.registry_id}", "pulls of"
            subject = f"account {caller.registry_id}"
        if buckets is None:
            return
        wait = buckets.take(key)
        if wait > 0:
            raise PullRateExceeded(
                f"Rate exceeded: {who} {subject} are limited to {buckets.rate:g} a second",
                retry_after=wait,
            )


class PublicAddressAuthorizer:
    """Pulls by anyone (counted against the pull rates); anything else only for a caller
    that logged in, as the ``ecr-public:`` action on the public site's authorizer."""

    def __init__(self, site: Authorizer, rates: PullRates) -> None:
        self._site = site
        self._rates = rates

    async def authorize(self, request: AccessRequest) -> None:
        action = str(request.action)
        if request.action in PULL_ACTIONS:
            if request.action is Action.BATCH_GET_IMAGE or action == Action.BATCH_GET_IMAGE:
                self._rates.check(request.principal, request.credentials.source_ip)
            return
        if request.principal.is_anonymous:
            raise Unauthenticated("authentication required")
        public_action = "ecr-public:" + action.removeprefix("ecr:")
        await self._site.authorize(replace(request, action=public_action))

    async def allowed_repositories(
        self, request: AccessRequest, repositories: Sequence[str]
    ) -> list[str]:
        # The public address serves no catalog (it has no route for it); a caller asking
        # anyway is owed nothing.
        return []


class PublicNames:
    """``<alias>/<repository>`` -> (registry id, repository), through the registries."""

    def __init__(self, registries: PublicRegistryService) -> None:
        self._registries = registries

    async def __call__(self, path_name: str) -> tuple[str, str]:
        alias, slash, repository = path_name.partition("/")
        if slash and repository:
            registry = await self._registries.by_alias(alias)
            if registry is not None:
                return registry.registry_id, repository
        raise RepositoryNotFound(
            f"no public repository {path_name!r}: public images are <alias>/<repository>",
            detail={"name": path_name},
        )
