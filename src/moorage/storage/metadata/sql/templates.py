"""The TemplateRecords port on SQL: a mixin of the store's transaction (``store.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, select, update

from moorage.domain.creation_templates import (
    CreationTemplate,
    template_from_document,
    template_to_document,
)
from moorage.storage.metadata.sql.tables import repository_creation_templates

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

_t = repository_creation_templates.c


def _template_of(row: Row[Any]) -> CreationTemplate:
    return template_from_document(row.prefix, row.document, row.created_at, row.updated_at)


class SqlTemplateRecords:
    """Template records on the transaction's connection ``_c``, in region ``region``;
    ``_insert`` is the dialect's INSERT. All are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory
    region: str

    def _where(self, registry_id: str, *more: Any) -> tuple[Any, ...]:
        return (_t.registry_id == registry_id, _t.region == self.region, *more)

    async def list_creation_templates(self, registry_id: str) -> list[CreationTemplate]:
        query = (
            select(repository_creation_templates)
            .where(*self._where(registry_id))
            .order_by(_t.prefix)
        )
        return [_template_of(row) for row in await self._c.execute(query)]

    async def insert_creation_template(
        self, registry_id: str, template: CreationTemplate, now: datetime
    ) -> bool:
        statement = (
            self._insert(repository_creation_templates)
            .values(
                registry_id=registry_id,
                region=self.region,
                prefix=template.prefix,
                document=template_to_document(template),
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["registry_id", "region", "prefix"])
        )
        return bool((await self._c.execute(statement)).rowcount)

    async def replace_creation_template(
        self, registry_id: str, template: CreationTemplate, now: datetime
    ) -> CreationTemplate | None:
        where = self._where(registry_id, _t.prefix == template.prefix)
        result = await self._c.execute(
            update(repository_creation_templates)
            .where(*where)
            .values(document=template_to_document(template), updated_at=now)
        )
        if not result.rowcount:
            return None
        row = (await self._c.execute(select(repository_creation_templates).where(*where))).one()
        return _template_of(row)

    async def delete_creation_template(
        self, registry_id: str, prefix: str
    ) -> CreationTemplate | None:
        where = self._where(registry_id, _t.prefix == prefix)
        row = (await self._c.execute(select(repository_creation_templates).where(*where))).first()
        if row is None:
            return None
        await self._c.execute(delete(repository_creation_templates).where(*where))
        return _template_of(row)
