"""Helpers of the tests that use SoftHSM2 tokens (tests/client)."""

from __future__ import annotations

import uuid


def key_label(prefix: str = "key") -> str:
    """A key label no other test of the session uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
