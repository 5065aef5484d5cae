"""Tierflow's database layer, below the indexer and the API and knowing neither.

- :mod:`db.engine`: async engines for a SQLAlchemy URL (SQLite in WAL mode, PostgreSQL);
- :mod:`db.locks`: :func:`~db.locks.exclusive`, a transaction that runs alone among processes;
- :mod:`db.migrate`: :func:`~db.migrate.upgrade` runs one package's Alembic history;
- :mod:`db.types`: column types for chain values (:class:`~db.types.Amount`, ``ADDRESS``,
  ``HASH``, ``STATUS``) and the constraint naming convention, defined once;
- :mod:`db.config`: :class:`~db.config.DatabaseSettings` (``TIERFLOW_DATABASE_URL``).
"""
