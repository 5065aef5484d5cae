"""How the services encode text for the chain, and read it back.

The chain keeps hashes of free text (a suspension's or freeze's reason, a payment reference,
a disbursement reference, a rejection's reason): :func:`sha256_text`. A registration number
in the national registry is a left-aligned, zero-padded ``bytes32``
(:func:`encode_registration`, :func:`decode_registration`).
"""

from __future__ import annotations

import hashlib

from ledger.bindings import ZERO_HASH

ZERO_HEX = "0x" + "00" * 32


def sha256_text(text: str) -> bytes:
    """What the chain keeps of a reason or reference: the SHA-256 of its UTF-8 text."""
    return hashlib.sha256(text.encode()).digest()


def text_hash(text: str | None) -> bytes:
    """SHA-256 of a reference or reason (zero when there is none)."""
    return ZERO_HASH if not text else sha256_text(text)


def encode_registration(text: str | None) -> bytes:
    """A registration number as the ``bytes32`` the desk keeps (zero: none)."""
    return ZERO_HASH if not text else text.encode().ljust(32, b"\0")


#: Between a credit line's programme number and the financing id in a derived number.
REGISTRATION_SEPARATOR = "-"
REGISTRATION_MAX_BYTES = 32


def financing_registration(programme_no: str | None, financing_id: int) -> str | None:
    """The registration number a financing under a credit line gets by default: the
    programme's number, ``-``, the financing id (``ZD-2026-07`` → ``ZD-2026-07-42``). A number
    backs one financing only (the desk refuses a second use) and financing ids are unique, so
    every financing under the programme gets its own. ``None`` without a programme number or
    when the result does not fit the chain's 32 bytes."""
    if not programme_no:
        return None
    derived = f"{programme_no}{REGISTRATION_SEPARATOR}{financing_id}"
    return derived if len(derived.encode()) <= REGISTRATION_MAX_BYTES else None


def decode_registration(value: str | None) -> str | None:
    """The text of a mirrored ``registrationNo`` (0x-hex when it is not text the API wrote)."""
    if value is None or value == ZERO_HEX:
        return None
    raw = bytes.fromhex(value[2:]).rstrip(b"\0")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return value
    return value if "\0" in text or not text.isprintable() else text
