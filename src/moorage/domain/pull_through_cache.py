"""Pull-through cache rules: which repositories a cache owns, and where their images come from.

ECR's model (shared reference §8.1; CreatePullThroughCacheRule)::

    rule  ecrRepositoryPrefix (2-30 chars, or ROOT)  ->  upstreamRegistryUrl
          upstreamRegistry?  (the enum of upstreams ECR knows; optional here, see below)
          upstreamRepositoryPrefix?  (default ROOT: the upstream path is the rest of the name)
          credentialArn?  (a Secrets Manager secret named ecr-pullthroughcache/...)

A pull of ``<prefix>/<rest>`` is served from the upstream repository ``<upstream prefix>/<rest>``
(``<rest>`` under ROOT). A prefix is given with or without its trailing ``/`` (``hub`` and
``hub/`` are one rule, as ECR appends the ``/``); it is stored and answered without it. The
longest matching prefix wins; ROOT matches every name no other rule matches.

Beyond ECR (a documented extension): ``upstreamRegistry`` may be left out, and then
``upstreamRegistryUrl`` names any OCI registry, as ``host[:port]`` or a full ``http://`` /
``https://`` URL. A bare host is reached over HTTPS, but for a loopback one (``localhost``,
``127.0.0.0/8``, ``::1``), which is plain HTTP, as docker treats such registries. With
``upstreamRegistry`` given, the URL must be that upstream's own host (:data:`UPSTREAM_HOSTS`),
else UnsupportedUpstreamRegistry, as in ECR.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from moorage.domain.errors import InvalidParameter, UnsupportedUpstreamRegistry

ROOT = "ROOT"
MAX_RULES = 50

# The upstreams of ECR's UpstreamRegistry enum and their hosts (user guide, "Sync an upstream
# registry with an Amazon ECR private registry"). ``ecr`` (another ECR registry) and
# ``azure-container-registry`` name a host per registry: a pattern each.
UPSTREAM_HOSTS: dict[str, str] = {
    "ecr-public": r"public\.ecr\.aws",
    "ecr-public-premium": r"public\.ecr\.aws",
    "k8s": r"registry\.k8s\.io",
    "quay": r"quay\.io",
    "docker-hub": r"registry-1\.docker\.io",
    "github-container-registry": r"ghcr\.io",
    "gitlab-container-registry": r"registry\.gitlab\.com",
    "azure-container-registry": r"[a-z0-9]+\.azurecr\.io",
    "chainguard": r"cgr\.dev",
    "ecr": r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com",
}
# Upstreams that need credentials (a credentialArn), as ECR requires them.
NEEDS_CREDENTIALS = frozenset(
    {
        "docker-hub",
        "github-container-registry",
        "gitlab-container-registry",
        "azure-container-registry",
        "chainguard",
    }
)

_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class CacheRule:
    prefix: str  # without a trailing '/', or ROOT
    upstream_url: str  # as given
    upstream_repository_prefix: str = ROOT
    upstream_registry: str | None = None
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    upstream_role_arn: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def base_url(self) -> str:
        """The upstream's URL with a scheme and without a trailing '/'."""
        url = self.upstream_url.rstrip("/")
        if "://" in url:
            return url
        host = urlsplit(f"//{url}").hostname or ""
        return f"{'http' if _is_loopback(host) else 'https'}://{url}"

    def owns(self, repository: str) -> bool:
        return self.prefix == ROOT or repository.startswith(self.prefix + "/")

    def upstream_repository(self, repository: str) -> str:
        """The upstream repository of a repository this rule owns."""
        rest = repository if self.prefix == ROOT else repository[len(self.prefix) + 1 :]
        if self.upstream_repository_prefix == ROOT:
            return rest
        return f"{self.upstream_repository_prefix}/{rest}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_prefix(prefix: str) -> str:
    """A prefix as stored: without its trailing '/'."""
    return prefix if prefix == ROOT else prefix.rstrip("/")


def rule_for(rules: Iterable[CacheRule], repository: str) -> CacheRule | None:
    """The rule owning ``repository``: the longest prefix that matches, else ROOT's."""
    best: CacheRule | None = None
    for rule in rules:
        if not rule.owns(repository):
            continue
        if (
            best is None
            or best.prefix == ROOT
            or (rule.prefix != ROOT and len(rule.prefix) > len(best.prefix))
        ):
            best = rule
    return best


def check_rule(rule: CacheRule) -> CacheRule:
    """The rule with its prefixes normalized. Raises InvalidParameter for a URL that is not
    a registry's, UnsupportedUpstreamRegistry for an ``upstreamRegistry`` whose host the URL
    is not."""
    url = rule.upstream_url
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not _HOST.fullmatch(parts.netloc)
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
    ):
        raise InvalidParameter(
            "Invalid parameter at 'upstreamRegistryUrl' failed to satisfy constraint: "
            "'must be a registry host, host:port, or an http(s) URL without a path'"
        )
    if rule.upstream_registry is not None:
        pattern = UPSTREAM_HOSTS.get(rule.upstream_registry)
        if pattern is None or not re.fullmatch(pattern, parts.hostname):
            raise UnsupportedUpstreamRegistry(
                f"The upstream registry URL '{url}' is not supported for the upstream "
                f"registry '{rule.upstream_registry}'."
            )
        if rule.upstream_registry in NEEDS_CREDENTIALS and rule.credential_arn is None:
            raise InvalidParameter(
                f"A credentialArn is required for the upstream registry '{rule.upstream_registry}'."
            )
    return replace(
        rule,
        prefix=normalize_prefix(rule.prefix),
        upstream_repository_prefix=normalize_prefix(rule.upstream_repository_prefix),
    )
