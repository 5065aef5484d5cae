"""The compiled log decoders give exactly what eth_abi gives, and refuse what it refuses.

For every event of the four contracts' ABIs, Hypothesis draws argument values, encodes a log
with ``eth_abi`` (indexed values as topics, the rest as data), and the decoder must return
the same values (normalised: checksummed addresses, 0x-hex bytes) and the same JSON text as
``json.dumps`` of them. Corrupted logs (non-zero padding, wrong length, wrong topic count)
must raise :class:`~ledger.errors.UndecodableLog`, never return a value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.artifacts import load_artifact
from ledger.codec import Decoder, _canonical, _signature, _static_decoder, json_text
from ledger.errors import UndecodableLog

CONTRACTS = ("MemberRegistry", "InvoiceRegistry", "ClaimLedger", "FinancingDesk")
ADDRESS = "0x" + "ab" * 20
EVENTS: list[tuple[str, dict[str, Any]]] = [
    (name, item)
    for name in CONTRACTS
    for item in load_artifact(name).abi
    if item.get("type") == "event" and not item.get("anonymous")
]


def _address(name: str) -> str:
    return "0x" + f"{CONTRACTS.index(name) + 1:040x}"


def _decoder() -> Decoder:
    return Decoder({name: (_address(name), load_artifact(name).abi) for name in CONTRACTS})


def _strategy(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
    if kind == "bool":
        return st.booleans()
    if kind.startswith("uint"):
        bits = int(kind[4:] or 256)
        return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))
    if kind.startswith("bytes") and kind[5:].isdigit():
        return st.binary(min_size=int(kind[5:]), max_size=int(kind[5:]))
    if kind.endswith("[]"):
        return st.lists(_strategy(kind[:-2]), max_size=5)
    raise AssertionError(f"no strategy for {kind}")


def _normal(kind: str, value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if kind.endswith("[]"):
        return [_normal(kind[:-2], v) for v in value]
    return value


def _log(contract: str, event: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    from eth_utils.crypto import keccak

    topics = ["0x" + keccak(text=_signature(event)).hex()]
    data_types, data_values = [], []
    for item, value in zip(event["inputs"], values, strict=True):
        kind = _canonical(item)
        if item["indexed"]:
            topics.append("0x" + abi_encode([kind], [value]).hex())
        else:
            data_types.append(kind)
            data_values.append(value)
    return {
        "address": _address(contract),
        "topics": topics,
        "data": "0x" + abi_encode(data_types, data_values).hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "11" * 32,
        "transactionHash": "0x" + "22" * 32,
        "transactionIndex": "0x3",
        "logIndex": "0x4",
    }


@st.composite
def logs(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[Any]]:
    contract, event = draw(st.sampled_from(EVENTS))
    values = [draw(_strategy(_canonical(i))) for i in event["inputs"]]
    return contract, event, values


def test_every_platform_event_but_the_dynamic_one_is_compiled() -> None:
    dynamic = {e["name"] for _, e in EVENTS if _static_decoder(e) is None}
    assert dynamic == {"PayableIssued"}


@settings(max_examples=400, deadline=None)
@given(logs())
def test_decoded_values_and_json_equal_eth_abi(case: tuple[str, dict[str, Any], list[Any]]) -> None:
    contract, event, values = case
    decoded = _decoder().decode(_log(contract, event, values))
    expected = {
        item["name"]: _normal(_canonical(item), value)
        for item, value in zip(event["inputs"], values, strict=True)
    }
    assert dict(decoded.args) == expected
    assert list(decoded.args) == [i["name"] for i in event["inputs"]]
    assert decoded.args_json == json.dumps(expected, separators=(",", ":"))
    assert decoded.key == f"{contract}:{event['name']}"
    assert (decoded.block_number, decoded.tx_index, decoded.log_index) == (16, 3, 4)


def _claim_split() -> tuple[str, dict[str, Any]]:
    return next((c, e) for c, e in EVENTS if e["name"] == "ClaimSplit")


def _split_log() -> dict[str, Any]:
    contract, event = _claim_split()
    values = [7, 8, 9, ADDRESS, ADDRESS, 10**20, 3, b"\x05" * 32]
    return _log(contract, event, values)


def test_split_decodes() -> None:
    args = _decoder().decode(_split_log()).args
    assert args["value"] == 10**20
    assert args["from"] == to_checksum_address(ADDRESS)


@pytest.mark.parametrize(
    ("word", "digit"),
    [
        (0, 0),  # an address word with a non-zero high byte
        (2, 0),  # a uint128 with bits above 128
        (3, 0),  # a uint16 with bits above 16
    ],
)
def test_non_zero_padding_is_refused(word: int, digit: int) -> None:
    log = _split_log()
    data = list(log["data"])
    data[2 + 64 * word + digit] = "f"
    log["data"] = "".join(data)
    with pytest.raises(UndecodableLog, match="malformed"):
        _decoder().decode(log)


def test_an_address_word_cached_or_not_decodes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Address words are cached as they come (``codec._ADDRESS_WORDS``): a badly padded word
    is never taken for the cached good one, and a full cache is emptied, not grown."""
    good = _decoder().decode(_split_log()).args
    assert codec._ADDRESS_WORDS[ADDRESS[2:].lower().rjust(64, "0")] == good["from"]
    log = _split_log()
    log["data"] = log["data"][:2] + "1" + log["data"][3:]  # the cached address, padding not zero
    with pytest.raises(UndecodableLog, match="malformed"):
        _decoder().decode(log)
    monkeypatch.setattr(codec, "ADDRESS_WORDS_MAX", 1)
    codec._ADDRESS_WORDS.clear()
    assert _decoder().decode(_split_log()).args == good
    assert len(codec._ADDRESS_WORDS) == 1


def test_a_short_data_part_is_refused() -> None:
    log = _split_log()
    log["data"] = log["data"][:-2]
    with pytest.raises(UndecodableLog, match="malformed"):
        _decoder().decode(log)


def test_a_missing_topic_is_refused() -> None:
    log = _split_log()
    log["topics"] = log["topics"][:-1]
    with pytest.raises(UndecodableLog, match="malformed"):
        _decoder().decode(log)


def test_an_unknown_event_is_refused() -> None:
    log = _split_log()
    log["topics"][0] = "0x" + "99" * 32
    with pytest.raises(UndecodableLog, match="unknown event"):
        _decoder().decode(log)


@settings(max_examples=100, deadline=None)
@given(logs())
def test_upper_case_hex_decodes_the_same(case: tuple[str, dict[str, Any], list[Any]]) -> None:
    """Nodes answer in lower case, but a log in upper-case hex means the same log."""
    contract, event, values = case
    log = _log(contract, event, values)

    def upper(text: str) -> str:
        return "0x" + text[2:].upper()

    shouted = {
        **log,
        "address": upper(log["address"]),
        "topics": [upper(t) for t in log["topics"]],
        "data": upper(log["data"]),
    }
    assert _decoder().decode(shouted) == _decoder().decode(log)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES)
def test_json_text_is_json_dumps_compact(value: Any) -> None:
    """The indexer's encoder (one C encoder made once) writes what ``json.dumps`` writes."""
    assert json_text(value) == json.dumps(value, separators=(",", ":"))


def test_json_text_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError):
        json_text({"a": object()})
