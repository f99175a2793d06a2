"""Metadata store adapters (``moorage.ports.metadata.MetadataStore``).

- ``sql/``: SQLite and PostgreSQL through SQLAlchemy Core (``tables.py`` holds the schema);
- ``migrations/``: the Alembic environment that creates and evolves that schema;
- ``migrate.py``: ``upgrade_database(url)``, run on every start.
"""
