"""The registry replication configuration, and what it asks of one pushed image.

ECR's model (shared reference §7.1; PutReplicationConfiguration)::

    ReplicationConfiguration   rules[0..10]               (an empty list turns it off)
     └── ReplicationRule       destinations[1..25], repositoryFilters[0..100], deleteReplication
          ├── Destination      region, registryId          (a (region, account) registry)
          └── RepositoryFilter filter (a name prefix), filterType PREFIX_MATCH

The botocore model admits 25 rules and 100 destinations per rule; the service's quotas
(user guide, "Amazon ECR service quotas") are 10 rules and 25 distinct destinations across
all rules, and those are what is checked, as ``LimitExceeded``-free ``InvalidParameter``
errors naming the quota (the model lists no LimitExceededException for the operation).

Matching (:meth:`ReplicationConfiguration.destinations_for`): a rule without filters takes
every repository; a rule with filters takes a repository whose name starts with one of them.
A destination named by several matching rules replicates once; its deletes propagate when
any of those rules sets ``deleteReplication``. The source registry itself (same region, same
account) is never a destination: PutReplicationConfiguration refuses it with AWS's message
(an image cannot be copied onto itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from moorage.domain.errors import InvalidParameter

MAX_RULES = 10
MAX_DESTINATIONS = 25
MAX_FILTERS = 100
# The header a copy to a peer deployment carries its source push time in (ISO 8601): the
# replicator writes it, the peer's /v2/ reads it (protocols/oci/replicas.py).
PUSHED_AT_HEADER = "X-Moorage-Replica-Pushed-At"


class ReplicationStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class FailureCode(StrEnum):
    """``failureCode`` of a FAILED replication. The model leaves the field a free string;
    these are moorage's, documented in docs/replication.md."""

    # The destination's registry policy does not grant the source account ecr:ReplicateImage
    # (or ecr:CreateRepository, for a repository that does not exist there yet).
    ACCESS_DENIED = "ACCESS_DENIED"
    # No deployment serves the destination region (not this one, and no peer is named).
    DESTINATION_UNREACHABLE = "DESTINATION_UNREACHABLE"
    # The destination refused the image (a manifest it cannot store, a limit).
    DESTINATION_REFUSED = "DESTINATION_REFUSED"
    # The source image was deleted before it could be copied.
    SOURCE_IMAGE_DELETED = "SOURCE_IMAGE_DELETED"
    # Every attempt failed for another reason (the job's last error says which).
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"


@dataclass(frozen=True, slots=True, order=True)
class Destination:
    """A registry to copy to: an account in a region."""

    region: str
    registry_id: str

    def __str__(self) -> str:
        return f"{self.registry_id}/{self.region}"


@dataclass(frozen=True, slots=True)
class ReplicationRule:
    destinations: tuple[Destination, ...]
    # Name prefixes (filterType PREFIX_MATCH, the only type); empty: every repository.
    prefixes: tuple[str, ...] = ()
    delete_replication: bool = False

    def matches(self, repository: str) -> bool:
        return not self.prefixes or any(repository.startswith(p) for p in self.prefixes)


@dataclass(frozen=True, slots=True)
class ReplicationConfiguration:
    rules: tuple[ReplicationRule, ...] = ()

    def destinations_for(self, repository: str) -> dict[Destination, bool]:
        """Each destination an image pushed to ``repository`` goes to, with whether its
        deletes propagate there too (any matching rule that names it says so)."""
        found: dict[Destination, bool] = {}
        for rule in self.rules:
            if rule.matches(repository):
                for destination in rule.destinations:
                    found[destination] = found.get(destination, False) or rule.delete_replication
        return found

    def all_destinations(self) -> set[Destination]:
        return {d for rule in self.rules for d in rule.destinations}


EMPTY_CONFIGURATION = ReplicationConfiguration()


def check_configuration(
    config: ReplicationConfiguration, *, source: Destination
) -> ReplicationConfiguration:
    """``config`` when it keeps ECR's quotas and names no destination equal to ``source``;
    raises InvalidParameter otherwise."""
    if len(config.rules) > MAX_RULES:
        raise InvalidParameter(
            f"A replication configuration may have at most {MAX_RULES} rules; "
            f"{len(config.rules)} were given."
        )
    destinations = config.all_destinations()
    if len(destinations) > MAX_DESTINATIONS:
        raise InvalidParameter(
            f"A replication configuration may name at most {MAX_DESTINATIONS} distinct "
            f"destinations across its rules; {len(destinations)} were given."
        )
    for index, rule in enumerate(config.rules):
        if not rule.destinations:
            raise InvalidParameter(f"Replication rule {index + 1} must name a destination.")
        if len(rule.prefixes) > MAX_FILTERS:
            raise InvalidParameter(
                f"Replication rule {index + 1} may have at most {MAX_FILTERS} repository filters."
            )
    if source in destinations:
        # AWS's words (as moto's tests quote them).
        raise InvalidParameter(
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
            "'Replication destination cannot be the same as the source registry'"
        )
    return config


# -- the stored document (also the API's shape, in snake_case) ------------------------------


def configuration_to_document(config: ReplicationConfiguration) -> list[dict[str, Any]]:
    return [
        {
            "destinations": [
                {"region": d.region, "registry_id": d.registry_id} for d in rule.destinations
            ],
            **(
                {
                    "repository_filters": [
                        {"filter": p, "filter_type": "PREFIX_MATCH"} for p in rule.prefixes
                    ]
                }
                if rule.prefixes
                else {}
            ),
            **({"delete_replication": {"enabled": True}} if rule.delete_replication else {}),
        }
        for rule in config.rules
    ]


def configuration_from_document(rules: Iterable[Mapping[str, Any]]) -> ReplicationConfiguration:
    """The configuration of a document :func:`configuration_to_document` wrote, or of the
    validated API input (the same shape)."""
    return ReplicationConfiguration(
        tuple(
            ReplicationRule(
                destinations=tuple(
                    Destination(d["region"], d["registry_id"]) for d in rule["destinations"]
                ),
                prefixes=tuple(f["filter"] for f in rule.get("repository_filters") or ()),
                delete_replication=bool((rule.get("delete_replication") or {}).get("enabled")),
            )
            for rule in rules
        )
    )
