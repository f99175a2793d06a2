"""The registry scanning configuration: Put/GetRegistryScanningConfiguration, and
BatchGetRepositoryScanningConfiguration, each repository's view of it.

What a configuration means for a repository is ``domain/scanning_configuration.py``'s; the
legacy per-repository flag (PutImageScanningConfiguration, in ``repositories.py``) takes part
there, so BatchGet reflects it under BASIC scanning.

Authorization: the dispatcher has authorized Put/Get on the registry (``*``) and
``ecr:BatchGetRepositoryScanningConfiguration`` on each named repository, as AWS's service
authorization reference lists it (a repository resource). A name that is no repository is
still authorized first, then answered as a ``REPOSITORY_NOT_FOUND`` failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from moorage.domain.scanning_configuration import (
    FilterType,
    RegistryScanningConfiguration,
    RepositoryFilter,
    ScanFrequency,
    ScanningRule,
    ScanType,
)
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry


@operation("PutRegistryScanningConfiguration")
async def put_registry_scanning_configuration(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Replace the configuration (absent ``scanType`` is BASIC, absent ``rules`` none); answer
    it as stored. Raises InvalidParameter for a frequency the scan type does not take."""
    config = RegistryScanningConfiguration(
        ScanType(params.get("scan_type", ScanType.BASIC)),
        tuple(_rule(rule) for rule in params.get("rules") or ()),
    )
    stored = await ctx.services.registry_settings.put_scanning_configuration(
        ctx.registry_id, config
    )
    return {"registry_scanning_configuration": configuration_output(stored)}


@operation("GetRegistryScanningConfiguration")
async def get_registry_scanning_configuration(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """The configuration put, else the default (BASIC, no rules)."""
    config = await ctx.services.registry_settings.get_scanning_configuration(ctx.registry_id)
    return {"registry_id": ctx.registry_id, "scanning_configuration": configuration_output(config)}


@operation("BatchGetRepositoryScanningConfiguration")
async def batch_get_repository_scanning_configuration(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Each named repository's scan frequency, scan-on-push and applied filters; names that
    are not repositories come back as failures, not as an error."""
    found, failures = await ctx.services.registry_settings.repository_scanning(
        ctx.registry_id, params["repository_names"]
    )
    return {
        "scanning_configurations": [
            {
                "repository_arn": ctx.repository_arn(item.repository.name),
                "repository_name": item.repository.name,
                # The repository's own (legacy) flag, as AWS answers it: the CLI reference's
                # example shows scanOnPush false beside scanFrequency SCAN_ON_PUSH.
                "scan_on_push": item.repository.scan_on_push,
                "scan_frequency": item.scanning.scan_frequency.value,
                "applied_scan_filters": _filters_output(item.scanning.applied_filters),
            }
            for item in found
        ],
        "failures": [
            {
                "repository_name": failure.repository_name,
                "failure_code": failure.failure_code,
                "failure_reason": failure.failure_reason,
            }
            for failure in failures
        ],
    }


def configuration_output(config: RegistryScanningConfiguration) -> dict[str, Any]:
    """ECR's ``RegistryScanningConfiguration``, snake_case."""
    return {
        "scan_type": config.scan_type.value,
        "rules": [
            {
                "scan_frequency": rule.scan_frequency.value,
                "repository_filters": _filters_output(rule.repository_filters),
            }
            for rule in config.rules
        ],
    }


def _filters_output(filters: Iterable[RepositoryFilter]) -> list[dict[str, str]]:
    return [{"filter": f.filter, "filter_type": f.filter_type.value} for f in filters]


def _rule(rule: Mapping[str, Any]) -> ScanningRule:
    # The shape has checked the enums, the pattern and the bounds.
    return ScanningRule(
        ScanFrequency(rule["scan_frequency"]),
        tuple(
            RepositoryFilter(f["filter"], FilterType(f["filter_type"]))
            for f in rule["repository_filters"]
        ),
    )
