"""Field types every representation shares (SPEC §4): addresses, amounts, hashes, times.

Inputs refuse unknown fields (``extra="forbid"``: no mass assignment), so a client cannot
slip ``holder`` or ``status`` into a request. Their integers are strict JSON integers
(``"100"``, ``true`` and ``1.0`` are refused, error type ``int_strict``), and no text
anywhere in a body may hold a control character (error type ``control_character``, answered
400 ``control_character``). Amounts are integers in minor units up to the
on-chain maximum (2^128 − 1); times are ISO 8601 in UTC; addresses 0x-checksummed.
"""

from __future__ import annotations

import functools
import re
import types
import typing
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from eth_utils.address import is_address, to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ledger.bindings import MAX_AMOUNT


@functools.lru_cache(maxsize=65_536)
def _checksummed(value: str) -> str | None:
    if not value.startswith("0x") or not is_address(value):
        return None
    return to_checksum_address(value)


def _address(value: str) -> str:
    # Cached: the checksum is a keccak in Python, and the same few members' addresses are in
    # every response (a tree of 50 pieces spent a fifth of its time checksumming them).
    checksummed = _checksummed(value) if isinstance(value, str) and len(value) == 42 else None
    if checksummed is None:
        raise ValueError("not a 0x address of 20 bytes")
    return checksummed


_HASH32 = re.compile(r"0x[0-9a-fA-F]{64}")


def _hash32(value: str) -> str:
    if not isinstance(value, str) or _HASH32.fullmatch(value) is None:
        raise ValueError("not a 0x-prefixed 32-byte hex string")
    return value.lower()


# StringConstraints rather than Field(pattern=...): FastAPI keeps them when the type is a
# path or query parameter, so the OpenAPI document states the exact length everywhere.
Address = Annotated[
    str,
    StringConstraints(min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$"),
    AfterValidator(_address),
    Field(examples=["0x5FbDB2315678afecb367f032d93F642f64180aa3"]),
]
Hash32 = Annotated[
    str,
    StringConstraints(min_length=66, max_length=66, pattern=r"^0x[0-9a-fA-F]{64}$"),
    AfterValidator(_hash32),
    Field(examples=["0x" + "ab" * 32]),
]
Sha256Hex = Annotated[
    str, Field(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 as 64 hex digits")
]
#: An amount in minor units (fen), as the chain takes it.
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT, description="minor units (fen)")]
PositiveAmount = Annotated[int, Field(ge=1, le=MAX_AMOUNT, description="minor units (fen)")]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


def iso(seconds: int | None) -> datetime | None:
    """A UNIX time as an aware UTC datetime (serialised as ISO 8601)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


Timestamp = Annotated[
    datetime, PlainSerializer(lambda d: d.isoformat().replace("+00:00", "Z"), return_type=str)
]


CONTROL_CHARACTER = "control_character"


def _control_free(value: Any, where: str) -> None:
    """Refuse a control character (Unicode category Cc: NUL, ESC, newline …) in any text."""
    if isinstance(value, str):
        for ch in value:
            if unicodedata.category(ch) == "Cc":
                raise PydanticCustomError(
                    CONTROL_CHARACTER,
                    "{field} holds a control character (U+{code})",
                    {"field": where, "code": f"{ord(ch):04X}"},
                )
    elif isinstance(value, dict):
        for key, item in value.items():
            _control_free(key, where)
            _control_free(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            _control_free(item, f"{where}[{n}]")


def _int_kind(annotation: Any) -> str | None:
    """ "int" for ``int`` / ``int | None``, "list" for ``list[int]``, else None."""
    if annotation is int:
        return "int"
    origin = typing.get_origin(annotation)
    # ``Amount | None``: the union keeps each member's Annotated wrapper
    args = tuple(
        typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
        for a in typing.get_args(annotation)
    )
    if origin in (typing.Union, types.UnionType) and set(args) == {int, type(None)}:
        return "int"
    if origin is list and args == (int,):
        return "list"
    return None


def _strict_int(value: Any, where: str) -> None:
    if value is not None and (type(value) is not int):
        raise PydanticCustomError(
            "int_strict",
            "{field} must be a JSON integer (not a string, boolean or fraction)",
            {"field": where},
        )


class Input(BaseModel):
    """A request body: unknown fields are refused, integers are strict JSON integers, text
    holds no control character."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _strict_input(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        _control_free(data, "body")
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key not in data:
                continue
            kind = _int_kind(field.annotation)
            if kind == "int":
                _strict_int(data[key], key)
            elif kind == "list" and isinstance(data[key], list):
                for n, item in enumerate(data[key]):
                    _strict_int(item, f"{key}[{n}]")
        return data


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WriteResult(Output):
    """What every write answers with, besides the objects it made or changed."""

    tx_hash: Hash32 = Field(description="the (last) transaction of this write")
    block_number: int = Field(ge=0, description="the block it was mined in")


T = TypeVar("T")


class PageOf(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None = None
