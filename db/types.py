"""Column types for chain values, exact on SQLite and PostgreSQL, and the naming convention.

SQLite has no exact decimal wider than 64-bit integers, and SQLAlchemy's ``Numeric`` silently
goes through floats there. :class:`Amount` stores a non-negative integer of up to 78 digits
(any ``uint256``) as ``NUMERIC(78, 0)`` on PostgreSQL and as zero-padded decimal text on other
databases, so equality, ``ORDER BY`` and range comparisons keep working, and reads give back
the very same Python ``int``. Addresses are 0x-checksummed strings (``ADDRESS``), hashes and
invoice ids 0x-hex (``HASH``), statuses the lower-case names of the contracts' enums
(``STATUS``). Every package's metadata takes :data:`NAMING`, so constraint names are the same
in every migration.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Numeric, String, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Digits of the largest uint256 (2**256 - 1 has 78).
AMOUNT_DIGITS = 78
_LIMIT = 10**AMOUNT_DIGITS

ADDRESS = String(42)
HASH = String(66)
STATUS = String(16)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Amount(TypeDecorator[int]):
    """A non-negative integer up to 78 digits, exact on every database."""

    impl = String(AMOUNT_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(AMOUNT_DIGITS, 0))
        return dialect.type_descriptor(String(AMOUNT_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"amount must be an int, got {type(value).__name__}")
        if not 0 <= value < _LIMIT:
            raise ValueError(f"amount out of range: {value}")
        if dialect.name == "postgresql":
            return Decimal(value)
        return f"{value:0{AMOUNT_DIGITS}d}"

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Core ``Table`` of a model (typed: ``__table__`` is a ``FromClause`` to mypy)."""
    return cast(Table, model.__table__)
