"""How an AWS service names what its operations act on: the IAM action of each operation,
the ARN of a repository, and which operations act on the registry as a whole.

ECR and ECR Public share the dispatcher (``dispatch.py``) and differ only here: ECR's
actions are ``ecr:<Operation>`` on ``arn:aws:ecr:<region>:<account>:repository/<name>``,
ECR Public's ``ecr-public:<Operation>`` on ``arn:aws:ecr-public::<account>:repository/<name>``
(a global service: no region in its ARNs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from moorage.iam.actions import (
    PARTITION,
    REGISTRY_OPERATIONS,
    action_of_operation,
    public_repository_arn,
    repository_arn,
)
from moorage.protocols.aws.errors import INVALID_PARAMETER, ApiError


@dataclass(frozen=True, slots=True)
class RepositoryArn:
    partition: str
    region: str
    registry_id: str
    name: str


def _invalid_arn(path: str) -> ApiError:
    # ECR's own words, whatever is wrong with it.
    return ApiError(
        INVALID_PARAMETER,
        f"Invalid parameter at '{path}' failed to satisfy constraint: 'Invalid ARN'",
    )


@dataclass(frozen=True)
class ResourceNaming:
    """One service's actions and repository ARNs (see the module docstring)."""

    # The ARN's service part: ecr, ecr-public.
    arn_service: str
    regional: bool
    action_of: Callable[[str], str]
    registry_operations: frozenset[str] = field(default_factory=frozenset)
    _arn: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        region = r"(?P<region>[a-z0-9-]+)" if self.regional else r"(?P<region>)"
        # The name is checked by whoever looks it up, like a repositoryName member.
        pattern = (
            rf"arn:(?P<partition>aws[a-z-]*):{re.escape(self.arn_service)}:{region}:"
            r"(?P<account>[0-9]{12}):repository/(?P<name>[^\s]+)"
        )
        object.__setattr__(self, "_arn", re.compile(pattern, re.ASCII))

    def repository_arn(self, region: str, registry_id: str, name: str) -> str:
        if self.regional:
            return repository_arn(region, registry_id, name)
        return public_repository_arn(registry_id, name)

    def parse_repository_arn(
        self, arn: str, *, region: str, path: str = "resourceArn"
    ) -> RepositoryArn:
        """Split a repository ARN; raise ``InvalidParameterException`` if it is not one of
        ours. An ARN of another partition or region names a repository this registry cannot
        hold, so it is refused the same way as a malformed one."""
        match = self._arn.fullmatch(arn)
        if match is None or match["partition"] != PARTITION:
            raise _invalid_arn(path)
        if self.regional and match["region"] != region:
            raise _invalid_arn(path)
        return RepositoryArn(match["partition"], match["region"], match["account"], match["name"])


ECR = ResourceNaming("ecr", True, action_of_operation, REGISTRY_OPERATIONS)

_PUBLIC_REGISTRY_OPERATIONS = frozenset(
    {
        "GetAuthorizationToken",
        "DescribeRegistries",
        "GetRegistryCatalogData",
        "PutRegistryCatalogData",
    }
)
_PUBLIC_ACTIONS: Mapping[str, str] = {}


def _public_action(operation: str) -> str:
    return _PUBLIC_ACTIONS.get(operation, f"ecr-public:{operation}")


ECR_PUBLIC = ResourceNaming("ecr-public", False, _public_action, _PUBLIC_REGISTRY_OPERATIONS)
