"""The ECR API operations this registry implements, by AWS operation name.

An operation is an async function named like AWS's operation in snake_case, marked with
:func:`operation`, in the module of its group (``repositories.py``, ``images.py``, ...)::

    @operation("CreateRepository")
    async def create_repository(
        ctx: ApiContext[Registry], params: dict[str, Any]
    ) -> Mapping[str, Any]: ...

``params`` is the validated input with snake_case keys (``shapes.deserialize_input``); the
result is the output with snake_case keys (``shapes.serialize_output``). Before the handler
runs, the dispatcher has authorized the operation's own action (``iam.actions``); a handler
calls ``ctx.authorize`` for any further action it needs (CreateRepository with tags also needs
``ecr:TagResource``). It raises domain exceptions, or ``ApiError`` for an AWS error with no
domain counterpart.

The composition root builds one :class:`OperationTable` from the group modules
(``OperationTable.from_modules(repositories, images)``). An ECR operation missing from the table
answers ``UnsupportedOperationException``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import ModuleType
from typing import Any, Generic, TypeVar

from moorage.protocols.aws import shapes
from moorage.protocols.aws.context import ApiContext

S = TypeVar("S")

Handler = Callable[[ApiContext[S], dict[str, Any]], Awaitable[Mapping[str, Any]]]
H = TypeVar("H", bound=Callable[..., Awaitable[Mapping[str, Any]]])

_OPERATION_ATTRIBUTE = "__ecr_operation__"


def operation(name: str) -> Callable[[H], H]:
    """Mark a handler as the implementation of the ECR operation ``name``.

    The mark alone does nothing; :meth:`OperationTable.of` and
    :meth:`OperationTable.from_modules` read it.
    """

    def mark(handler: H) -> H:
        setattr(handler, _OPERATION_ATTRIBUTE, name)
        return handler

    return mark


def operation_name_of(handler: object) -> str | None:
    """The operation name a handler was marked with, if any."""
    name = getattr(handler, _OPERATION_ATTRIBUTE, None)
    return name if isinstance(name, str) else None


class OperationTable(Generic[S]):
    """Operation name -> handler, for one service (``ecr`` by default). Names must be
    operations of that service's model, each once."""

    def __init__(self, service: str = shapes.SERVICE_NAME) -> None:
        self.service = service
        self._handlers: dict[str, Handler[S]] = {}

    @classmethod
    def of(cls, *handlers: Handler[S], service: str = shapes.SERVICE_NAME) -> OperationTable[S]:
        """A table of handlers marked with :func:`operation` (ValueError for an unmarked one)."""
        table: OperationTable[S] = cls(service)
        for handler in handlers:
            name = operation_name_of(handler)
            if name is None:
                raise ValueError(f"{handler!r} is not marked with @operation")
            table.add(name, handler)
        return table

    @classmethod
    def from_modules(
        cls, *modules: ModuleType, service: str = shapes.SERVICE_NAME
    ) -> OperationTable[S]:
        """A table of every marked handler defined in ``modules``.

        The handlers' ``ApiContext`` type is not checked here; keep one services type per
        application.
        """
        table: OperationTable[S] = cls(service)
        for module in modules:
            for value in vars(module).values():
                name = operation_name_of(value)
                if name is not None and table.get(name) is not value:
                    table.add(name, value)
        return table

    def add(self, name: str, handler: Handler[S]) -> None:
        """Register ``handler`` for ``name``; ValueError for a name the service does not have
        or a second handler for the same name."""
        if shapes.operation_model(name, self.service) is None:
            raise ValueError(f"{name!r} is not an operation of the {self.service} API")
        if name in self._handlers:
            raise ValueError(f"{name} already has a handler: {self._handlers[name]!r}")
        self._handlers[name] = handler

    def get(self, name: str) -> Handler[S] | None:
        return self._handlers.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._handlers))

    def __len__(self) -> int:
        return len(self._handlers)
