"""The operation table: what may be registered, and how."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import OperationTable, operation, operation_name_of
from tests.unit.protocols.aws import sample_operations
from tests.unit.protocols.aws.sample_operations import (
    SampleServices,
    create_repository,
    describe_images,
)


def test_the_decorator_marks_and_returns_the_handler() -> None:
    assert operation_name_of(create_repository) == "CreateRepository"
    assert operation_name_of(test_the_decorator_marks_and_returns_the_handler) is None


def test_a_table_of_handlers() -> None:
    table = OperationTable[SampleServices].of(create_repository, describe_images)
    assert list(table) == ["CreateRepository", "DescribeImages"]
    assert table.get("CreateRepository") is create_repository
    assert table.get("PutImage") is None
    assert "DescribeImages" in table
    assert len(table) == 2


def test_a_table_of_modules_takes_every_marked_handler_once() -> None:
    table = OperationTable[SampleServices].from_modules(sample_operations, sample_operations)
    assert "CreateRepository" in table
    assert "UploadLayerPart" in table
    assert table.get("ListImages") is sample_operations.list_images


async def _unmarked(ctx: ApiContext[SampleServices], params: dict[str, Any]) -> Mapping[str, Any]:
    return {}


def test_unmarked_handlers_are_refused() -> None:
    with pytest.raises(ValueError, match="not marked"):
        OperationTable[SampleServices].of(_unmarked)


def test_names_must_be_ecr_operations() -> None:
    table = OperationTable[SampleServices]()
    with pytest.raises(ValueError, match="not an operation of the ecr API"):
        table.add("CreateRepositry", _unmarked)

    @operation("PutObject")
    async def put_object(
        ctx: ApiContext[SampleServices], params: dict[str, Any]
    ) -> Mapping[str, Any]:
        return {}

    with pytest.raises(ValueError, match="not an operation of the ecr API"):
        OperationTable[SampleServices].of(put_object)


def test_one_handler_per_operation() -> None:
    table = OperationTable[SampleServices].of(create_repository)
    with pytest.raises(ValueError, match="already has a handler"):
        table.add("CreateRepository", _unmarked)
