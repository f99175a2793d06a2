"""The repository creation template records port: a registry's templates, in the
transaction's region. Part of every metadata transaction (``MetadataTransaction`` includes
:class:`TemplateRecords`); what a template means is ``domain/creation_templates.py``'s."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from moorage.domain.creation_templates import CreationTemplate


class TemplateRecords(Protocol):
    async def list_creation_templates(self, registry_id: str) -> list[CreationTemplate]:
        """The registry's templates in this region, by prefix."""
        ...

    async def insert_creation_template(
        self, registry_id: str, template: CreationTemplate, now: datetime
    ) -> bool:
        """Add a template (created and updated ``now``); False when its prefix has one."""
        ...

    async def replace_creation_template(
        self, registry_id: str, template: CreationTemplate, now: datetime
    ) -> CreationTemplate | None:
        """Replace the settings of the template of ``template.prefix`` (updated ``now``);
        the template as stored, None when there is none."""
        ...

    async def delete_creation_template(
        self, registry_id: str, prefix: str
    ) -> CreationTemplate | None:
        """Remove a template; the template it was, None when there was none."""
        ...
