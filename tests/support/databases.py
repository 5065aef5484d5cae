"""Throwaway databases for tests: PostgreSQL databases on the machine's server (trust auth,
database ``test`` at 127.0.0.1:5432, as CI has it), and the ``database_url`` fixture that
runs a test on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import os
import uuid

import asyncpg

#: The PostgreSQL server of the machine (and CI's): trust auth, database ``test``.
PG_SERVER = os.environ.get("TIERFLOW_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")


def pg_url(database: str) -> str:
    base = PG_SERVER.rsplit("/", 1)[0]
    return f"{base}/{database}"


async def create_pg_database() -> str:
    name = f"tierflow_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
