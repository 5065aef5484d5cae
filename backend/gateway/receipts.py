"""A mined receipt's events: the logs of the deployment's contracts, decoded by
:class:`ledger.codec.Decoder` (the ids a write created come from its events)."""

from __future__ import annotations

from typing import Any

from web3.types import TxReceipt

from ledger.codec import DecodedEvent, Decoder


def decoded_events(decoder: Decoder, receipt: TxReceipt) -> tuple[DecodedEvent, ...]:
    """The events of ``receipt``'s logs that the deployment's contracts emitted, in order."""
    return tuple(
        decoder.decode(log_json(log))
        for log in receipt["logs"]
        if str(log["address"]).lower() in decoder.addresses
    )


def log_json(log: Any) -> dict[str, Any]:
    """A receipt log (web3 types) in the JSON-RPC shape the decoder reads."""

    def hx(value: Any) -> str:
        return value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value)

    return {
        "address": str(log["address"]),
        "topics": [hx(t) for t in log["topics"]],
        "data": hx(log["data"]),
        "blockNumber": hex(int(log["blockNumber"])),
        "blockHash": hx(log["blockHash"]),
        "transactionHash": hx(log["transactionHash"]),
        "transactionIndex": hex(int(log["transactionIndex"])),
        "logIndex": hex(int(log["logIndex"])),
    }
