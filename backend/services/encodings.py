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
