"""The indexer tests' scenario generator emits every event the four contracts can emit.

The replay-equivalence tests trust :func:`bench.indexer_load.scenario` to exercise every
handler; this reads the scenario's logs back from the node with web3 (independently of the
generator's own decoder) and checks that each event name of each contract occurred.
"""

from __future__ import annotations

import json
from collections import Counter

from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address

from bench.indexer_load import CONTRACTS, UNREACHABLE_EVENTS, scenario
from ledger.anvil import AnvilProcess
from ledger.node import close_web3, make_web3
from ledger.paths import abi_dir


async def test_scenario_emits_every_domain_event() -> None:
    with AnvilProcess.ephemeral() as node:
        result = await scenario(node.url, seed=7, operations=60)
        w3 = make_web3(node.url)
        try:
            seen: Counter[str] = Counter()
            expected: set[str] = set()
            for name in CONTRACTS:
                address = to_checksum_address(result.deployment.address(name))
                topics = {}
                for entry in json.loads((abi_dir() / f"{name}.json").read_text()):
                    if entry.get("type") == "event":
                        topics[bytes(event_abi_to_log_topic(entry))] = entry["name"]
                        if entry["name"] not in UNREACHABLE_EVENTS:
                            expected.add(f"{name}:{entry['name']}")
                logs = await w3.eth.get_logs(
                    {
                        "address": address,
                        "fromBlock": result.first_block,
                        "toBlock": result.last_block,
                    }
                )
                for log in logs:
                    seen[f"{name}:{topics[bytes(log['topics'][0])]}"] += 1
        finally:
            await close_web3(w3)
    assert sum(seen.values()) == result.logs
    assert seen == result.events
    missing = sorted(expected - set(seen))
    assert not missing, f"the scenario never emitted {missing}"
    # splits went down several tiers
    assert max(p.depth for p in result.world.pieces.values()) >= 2
