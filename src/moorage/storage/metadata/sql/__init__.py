"""The SQL metadata store: SQLite (the default) and PostgreSQL, through SQLAlchemy Core.

- ``tables.py``: the whole schema, in one place;
- ``engine.py``: engines configured per dialect (pragmas, how transactions begin);
- ``store.py``: ``SqlMetadataStore``, the port on that schema, and ``open_sql_metadata_store``.
"""
