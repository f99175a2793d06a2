"""How a registry names itself: the host of each account's registry, and back.

ECR gives every account its own registry host, ``<account>.dkr.ecr.<region>.amazonaws.com``;
``repositoryUri`` and ``proxyEndpoint`` are built from it, and the host a ``/v2/`` request is
sent to says which account's registry it addresses. moorage does the same with a host
template (``registry_host``): a ``host[:port]`` in which ``{registry_id}`` and ``{region}``
are replaced. Without a template, the registry is named by the address the client used to
reach the server (its ``Host`` header), so a printed URI is pushable as it is; one account is
then addressed per caller (their own). A template with ``{region}`` names each region's
registry too, and the ``Host`` of a ``/v2/`` request then says which region it acts in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

_REGISTRY_ID = "{registry_id}"
_REGION = "{region}"


@dataclass(frozen=True)
class RegistryAddresses:
    """``template``: a host template, or None to answer with the request's own host."""

    template: str | None
    region: str

    def host(self, registry_id: str, request_host: str) -> str:
        """The registry host of an account, as a client should write it."""
        if self.template is None:
            return request_host
        return self.template.replace(_REGISTRY_ID, registry_id).replace(_REGION, self.region)

    def repository_uri(self, registry_id: str, name: str, request_host: str) -> str:
        return f"{self.host(registry_id, request_host)}/{name}"

    def proxy_endpoint(self, registry_id: str, request_host: str, scheme: str) -> str:
        return f"{scheme}://{self.host(registry_id, request_host)}"

    @property
    def selects_region(self) -> bool:
        """Whether the host names the region (the template has ``{region}``)."""
        return self.template is not None and _REGION in self.template

    def region_of_host(self, request_host: str) -> str | None:
        """The region a ``Host`` header names, or None when the host does not say."""
        if not self.selects_region:
            return None
        match = self._match(request_host)
        return None if match is None else match.group("region")

    @property
    def selects_account(self) -> bool:
        """Whether the host names the account (the template has ``{registry_id}``)."""
        return self.template is not None and _REGISTRY_ID in self.template

    def registry_of_host(self, request_host: str) -> str | None:
        """The account a ``Host`` header addresses, or None when the host does not say.

        Host names compare case-insensitively. When the template has no port, the request's
        port is ignored, so a template ``{registry_id}.registry.test`` also matches
        ``123456789012.registry.test:5000``.
        """
        if not self.selects_account:
            return None
        match = self._match(request_host)
        return None if match is None else match.group("registry_id")

    def _match(self, request_host: str) -> re.Match[str] | None:
        host = request_host.lower()
        match = self._pattern.fullmatch(host)
        if match is None and ":" not in (self.template or "").rsplit("]", 1)[-1]:
            match = self._pattern.fullmatch(host.rsplit(":", 1)[0])
        return match

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        assert self.template is not None
        pattern = re.escape(self.template.lower())
        pattern = pattern.replace(re.escape(_REGISTRY_ID), r"(?P<registry_id>\d{12})", 1)
        pattern = pattern.replace(re.escape(_REGISTRY_ID), r"(?P=registry_id)")
        # Any region's host matches: which regions are served is the application's to say.
        pattern = pattern.replace(re.escape(_REGION), r"(?P<region>[a-z0-9-]{1,32})", 1)
        pattern = pattern.replace(re.escape(_REGION), r"(?P=region)")
        return re.compile(pattern)
