"""AWS regions: the names a deployment serves, and the one it defaults to.

On AWS every (account, region) is a registry of its own; moorage keys what a registry owns by
both (storage/metadata/sql/tables.py). A region name is checked with :data:`REGION_PATTERN`
(AWS's form: ``us-east-1``, ``us-gov-west-1``, ``eusc-de-east-1``).
"""

from __future__ import annotations

import re
from functools import cache

DEFAULT_REGION = "us-east-1"
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}")


def is_region(name: str) -> bool:
    """Whether ``name`` has the form of an AWS region name."""
    return len(name) <= 32 and REGION_PATTERN.fullmatch(name) is not None


@cache
def aws_regions() -> frozenset[str]:
    """The regions of AWS's commercial partition (``aws``, the one our ARNs name) that have
    ECR, from the endpoint data botocore ships: what emulator mode serves."""
    import botocore.session  # type: ignore[import-untyped]  # loaded only by emulator mode

    session = botocore.session.get_session()
    return frozenset(session.get_available_regions("ecr", partition_name="aws"))
