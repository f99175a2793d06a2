"""The Alembic environment for the metadata schema (``env.py``, ``versions/``).

Run through ``moorage.storage.metadata.migrate``, never with an alembic.ini.
"""
