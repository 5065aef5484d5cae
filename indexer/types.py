"""Column types that keep chain values exact on SQLite and PostgreSQL.

SQLite has no exact decimal wider than 64-bit integers, and SQLAlchemy's ``Numeric`` silently
goes through floats there. :class:`Amount` stores a non-negative integer of up to 78 digits
(any ``uint256``) as ``NUMERIC(78, 0)`` on PostgreSQL and as zero-padded decimal text on other
databases, so equality, ``ORDER BY`` and range comparisons keep working, and reads give back
the very same Python ``int``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Digits of the largest uint256 (2**256 - 1 has 78).
AMOUNT_DIGITS = 78
_LIMIT = 10**AMOUNT_DIGITS


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
