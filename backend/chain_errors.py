"""What a read of the node raises when the node is down, stopped or too slow.

A write goes through the sender, which turns these into :class:`ChainUnavailableError`; a plain
read (the chain's clock, an ``eth_call``) fails with the HTTP client's own error or a timeout.
The API answers any of them as 503 ``chain_unavailable``; a read that can do without the node
catches them and answers without it.
"""

from __future__ import annotations

import aiohttp
from web3.exceptions import ProviderConnectionError

from ledger.errors import ChainUnavailableError

NODE_DOWN_ERRORS: tuple[type[Exception], ...] = (
    ChainUnavailableError,
    ProviderConnectionError,
    aiohttp.ClientError,
    TimeoutError,
)
