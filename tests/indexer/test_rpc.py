"""ledger.jsonrpc against a real anvil behind tests.support.faulty_node: round trips, batches,
which faults are retried and which are not, eth_getLogs range errors, a lagging node.

Read-only on the shared per-worker anvil; the head-lag tests mine blocks on a private anvil.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from ledger.anvil import ANVIL_CHAIN_ID, AnvilProcess, rpc_call
from ledger.errors import LedgerError
from ledger.jsonrpc import (
    CoalescingRpcClient,
    MalformedResponse,
    NodeUnavailable,
    RangeTooLarge,
    RetryPolicy,
    RpcClient,
    RpcError,
)
from tests.support.chain import wait_receipt
from tests.support.faulty_node import Fault, FaultyNode

FAST = RetryPolicy(attempts=4, initial_s=0.001, max_s=0.01)
#: Client timeout for TIMEOUT faults; the proxy hangs longer (PROXY_DELAY_S) before closing.
CLIENT_TIMEOUT_S = 0.3
#: Client timeout everywhere else: a loaded CI machine can take longer than CLIENT_TIMEOUT_S
#: to answer a plain request, and an attempt timed out client-side may never reach the proxy's
#: counters (which the tests assert exactly).
PATIENT_TIMEOUT_S = 10.0
PROXY_DELAY_S = 1.0
#: Init code that emits one empty LOG0 and deploys nothing: PUSH1 0 PUSH1 0 LOG0 STOP.
LOG0_INIT_CODE = "0x60006000a000"
CHAIN_ID = hex(ANVIL_CHAIN_ID)


class Errors:
    """An ``on_error`` callback that records what it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, BaseException]] = []

    def __call__(self, method: str, exc: BaseException) -> None:
        self.seen.append((method, exc))

    @property
    def methods(self) -> list[str]:
        return [method for method, _ in self.seen]


@pytest.fixture
async def node(anvil_url: str) -> AsyncIterator[FaultyNode]:
    async with FaultyNode(anvil_url) as proxy:
        proxy.timeout_delay_s = PROXY_DELAY_S
        yield proxy


def client(
    node: FaultyNode,
    errors: Errors | None = None,
    *,
    retry: RetryPolicy = FAST,
    timeout_s: float = PATIENT_TIMEOUT_S,
) -> RpcClient:
    return RpcClient(node.url, timeout_s=timeout_s, retry=retry, on_error=errors)


def timeout_for(fault: Fault) -> float:
    """Short only where the test injects a hang, so its retries are quick."""
    return CLIENT_TIMEOUT_S if fault is Fault.TIMEOUT else PATIENT_TIMEOUT_S


# -- round trips ------------------------------------------------------------------------------


async def test_call_round_trip(node: FaultyNode, anvil_url: str) -> None:
    async with client(node) as rpc:
        assert await rpc.call("eth_chainId", []) == CHAIN_ID
        head = int(await rpc.call("eth_blockNumber", []), 16)
        block = await rpc.call("eth_getBlockByNumber", [hex(head), False])
        assert int(block["number"], 16) == head
        assert await rpc.call("eth_getBlockByNumber", [hex(head + 1000), False]) is None
    assert node.requests == 4
    assert node.methods == {"eth_chainId": 1, "eth_blockNumber": 1, "eth_getBlockByNumber": 2}


@pytest.mark.parametrize("reorder", [False, True], ids=["in-order", "reordered"])
async def test_batch_is_one_request_with_results_in_call_order(
    node: FaultyNode, reorder: bool
) -> None:
    node.reorder_batches = reorder
    accounts = rpc_call(node.upstream_url, "eth_accounts")
    async with client(node) as rpc:
        results = await rpc.batch(
            [
                ("eth_chainId", []),
                ("eth_getBlockByNumber", ["0x0", False]),
                *[("eth_getTransactionCount", [account, "earliest"]) for account in accounts[:3]],
                ("eth_getBlockByNumber", ["0xffffffff", False]),
                ("net_version", []),
            ]
        )
        assert await rpc.batch([]) == []
    assert results[0] == CHAIN_ID
    assert results[1]["number"] == "0x0"
    assert results[2:5] == ["0x0", "0x0", "0x0"]
    assert results[5] is None
    assert results[6] == str(ANVIL_CHAIN_ID)
    assert node.requests == 1  # one HTTP POST; the empty batch sent nothing
    assert sum(node.methods.values()) == 7


async def test_ids_stay_unique_across_calls_and_batches(node: FaultyNode) -> None:
    # Concurrent calls and batches on one client: every answer finds its own request.
    async with client(node) as rpc:
        answers = await asyncio.gather(
            *[rpc.batch([("eth_chainId", []), ("net_version", [])]) for _ in range(10)],
            *[rpc.call("eth_getBlockByNumber", ["0x0", False]) for _ in range(10)],
        )
    assert answers[:10] == [[CHAIN_ID, str(ANVIL_CHAIN_ID)]] * 10
    assert all(block["number"] == "0x0" for block in answers[10:])


# -- transient faults: retried ----------------------------------------------------------------

TRANSIENT: dict[Fault, type[BaseException] | tuple[type[BaseException], ...]] = {
    Fault.TIMEOUT: (TimeoutError, httpx.TimeoutException),
    Fault.HTTP_500: httpx.HTTPStatusError,
    Fault.HTTP_502: httpx.HTTPStatusError,
    Fault.HTTP_429: httpx.HTTPStatusError,
    Fault.TRUNCATED_JSON: MalformedResponse,
    Fault.MALFORMED_JSON: MalformedResponse,
    Fault.DROP: httpx.TransportError,
}


@pytest.mark.parametrize("fault", list(TRANSIENT), ids=lambda f: f.name)
async def test_transient_fault_is_retried_then_succeeds(node: FaultyNode, fault: Fault) -> None:
    errors = Errors()
    node.fail_next(2, fault)
    async with client(node, errors, timeout_s=timeout_for(fault)) as rpc:
        assert await rpc.call("eth_chainId", []) == CHAIN_ID
    assert node.requests == 3
    assert node.faults_injected == 2
    assert errors.methods == ["eth_chainId", "eth_chainId"], errors.seen
    assert all(isinstance(exc, TRANSIENT[fault]) for _, exc in errors.seen), errors.seen


@pytest.mark.parametrize("fault", list(TRANSIENT), ids=lambda f: f.name)
async def test_transient_fault_on_a_batch_retries_the_batch(node: FaultyNode, fault: Fault) -> None:
    errors = Errors()
    node.fail_next(1, fault, method="eth_getBlockByNumber")
    async with client(node, errors, timeout_s=timeout_for(fault)) as rpc:
        assert await rpc.batch([("eth_chainId", [])]) == [CHAIN_ID]  # not the rule's method
        blocks = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in (0, 0)])
    assert [block["number"] for block in blocks] == ["0x0", "0x0"]
    assert node.requests == 3
    assert errors.methods == ["eth_getBlockByNumber"], errors.seen  # a batch: its first method


async def test_persistent_fault_raises_node_unavailable_after_all_attempts(
    node: FaultyNode,
) -> None:
    errors = Errors()
    node.fail_next(100, Fault.HTTP_502)
    async with client(node, errors) as rpc:
        with pytest.raises(NodeUnavailable, match=r"eth_chainId.* 4 attempt") as caught:
            await rpc.call("eth_chainId", [])
        with pytest.raises(NodeUnavailable) as caught_batch:
            await rpc.batch([("eth_blockNumber", []), ("eth_chainId", [])])
    assert isinstance(caught.value, LedgerError)
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
    assert caught.value.__cause__.response.status_code == 502
    assert (caught.value.method, caught.value.attempts) == ("eth_chainId", 4)
    assert caught_batch.value.method == "eth_blockNumber"
    assert node.requests == 8
    assert errors.methods == ["eth_chainId"] * 4 + ["eth_blockNumber"] * 4


async def test_persistent_timeout_gives_up_after_attempts_times_timeout(
    node: FaultyNode,
) -> None:
    errors = Errors()
    node.fail_next(3, Fault.TIMEOUT)
    retry = RetryPolicy(attempts=3, initial_s=0.001, max_s=0.001)
    started = time.monotonic()
    async with client(node, errors, retry=retry, timeout_s=CLIENT_TIMEOUT_S) as rpc:
        with pytest.raises(NodeUnavailable) as caught:
            await rpc.call("eth_blockNumber", [])
        elapsed = time.monotonic() - started
        assert await rpc.call("eth_chainId", []) == CHAIN_ID  # the pool recovered
    assert 3 * CLIENT_TIMEOUT_S * 0.9 <= elapsed < PROXY_DELAY_S * 2.5
    assert isinstance(caught.value.__cause__, TimeoutError | httpx.TimeoutException)
    assert len(errors.seen) == 3


async def test_random_faults_are_reproducible_and_survived(node: FaultyNode) -> None:
    faults = [
        Fault.HTTP_500,
        Fault.HTTP_429,
        Fault.DROP,
        Fault.MALFORMED_JSON,
        Fault.TRUNCATED_JSON,
    ]
    runs: list[list[str]] = []
    for _ in range(2):
        node.clear()
        node.fail_randomly(0.3, faults, seed=1234)
        errors = Errors()
        retry = RetryPolicy(attempts=8, initial_s=0.001, max_s=0.005)
        async with client(node, errors, retry=retry) as rpc:
            for n in range(20):
                if n % 2:
                    assert await rpc.call("eth_chainId", []) == CHAIN_ID
                else:
                    assert await rpc.batch([("net_version", []), ("eth_chainId", [])]) == [
                        str(ANVIL_CHAIN_ID),
                        CHAIN_ID,
                    ]
        assert node.faults_injected == len(errors.seen) > 0
        assert node.requests == 20 + node.faults_injected
        runs.append([type(exc).__name__ for _, exc in errors.seen])
    assert runs[0] == runs[1]


# -- JSON-RPC errors: not retried -------------------------------------------------------------


async def test_rpc_error_is_not_retried(node: FaultyNode) -> None:
    errors = Errors()
    async with client(node, errors) as rpc:
        with pytest.raises(RpcError) as caught:
            await rpc.call("tierflow_noSuchMethod", [])
    assert not isinstance(caught.value, RangeTooLarge)
    assert caught.value.code == -32601
    assert caught.value.method == "tierflow_noSuchMethod"
    assert caught.value.message
    assert node.requests == 1
    assert errors.methods == ["tierflow_noSuchMethod"]


async def test_batch_raises_the_first_failing_entry(node: FaultyNode) -> None:
    async with client(node) as rpc:
        with pytest.raises(RpcError) as caught:
            await rpc.batch(
                [
                    ("eth_chainId", []),
                    ("eth_getBalance", ["not an address", "latest"]),
                    ("tierflow_noSuchMethod", []),
                ]
            )
    assert caught.value.method == "eth_getBalance"
    assert caught.value.code != -32601
    assert node.requests == 1


# -- eth_getLogs range errors -----------------------------------------------------------------

LOGS_QUERY = {"fromBlock": "0x0", "toBlock": "latest"}


async def test_range_too_large_is_an_rpc_error_for_get_logs(node: FaultyNode) -> None:
    errors = Errors()
    node.fail_next(1, Fault.RANGE_TOO_LARGE, method="eth_getLogs")
    async with client(node, errors) as rpc:
        assert await rpc.call("eth_chainId", []) == CHAIN_ID  # the rule waits for eth_getLogs
        with pytest.raises(RangeTooLarge) as caught:
            await rpc.call("eth_getLogs", [LOGS_QUERY])
        assert isinstance(await rpc.call("eth_getLogs", [LOGS_QUERY]), list)  # rule used up
    assert (caught.value.code, caught.value.method) == (-32005, "eth_getLogs")
    assert "more than 10000" in caught.value.message
    assert node.requests == 3  # not retried
    assert errors.methods == ["eth_getLogs"]


async def test_range_too_large_in_a_batch(node: FaultyNode) -> None:
    node.fail_next(1, Fault.RANGE_TOO_LARGE)
    async with client(node) as rpc:
        with pytest.raises(RangeTooLarge) as caught:
            await rpc.batch([("eth_blockNumber", []), ("eth_getLogs", [LOGS_QUERY])])
    assert caught.value.method == "eth_getLogs"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-32000, "query returned more than 10000 results"),  # geth, infura
        (-32005, "something the provider made up"),
        (-32602, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K "
         "block range"),  # alchemy
        (-32000, "Requested range exceeds maximum range limit"),  # besu
        (-32000, "block range is too large"),  # erigon
        (-32000, "eth_getLogs is limited to a 10,000 range"),  # quicknode
        (-32600, "Too Many Logs"),
        (-32000, "max results limit exceeded"),
    ],
)  # fmt: skip
async def test_range_too_large_classification(node: FaultyNode, code: int, message: str) -> None:
    node.range_error = {"code": code, "message": message}
    node.fail_next(2, Fault.RANGE_TOO_LARGE)
    async with client(node) as rpc:
        with pytest.raises(RangeTooLarge) as caught:
            await rpc.call("eth_getLogs", [LOGS_QUERY])
        with pytest.raises(RpcError) as other_method:  # the same words elsewhere: plain RpcError
            await rpc.call("eth_getBlockByNumber", ["latest", False])
    assert (caught.value.code, caught.value.message) == (code, message)
    assert type(other_method.value) is RpcError


@pytest.mark.parametrize(
    "message", ["invalid block range params", "block range extends beyond current head block"]
)
async def test_not_range_too_large(node: FaultyNode, message: str) -> None:
    node.range_error = {"code": -32000, "message": message}
    node.fail_next(1, Fault.RANGE_TOO_LARGE)
    async with client(node) as rpc:
        with pytest.raises(RpcError) as caught:
            await rpc.call("eth_getLogs", [LOGS_QUERY])
    assert type(caught.value) is RpcError


# -- a lagging node ---------------------------------------------------------------------------

LAG_BLOCKS = 6


@pytest.fixture(scope="module")
def lag_chain() -> Iterator[str]:
    """A private anvil with LAG_BLOCKS blocks, each holding one log (this test mines)."""
    with AnvilProcess.ephemeral() as chain:
        sender = rpc_call(chain.url, "eth_accounts")[0]
        for _ in range(LAG_BLOCKS):
            tx = rpc_call(
                chain.url, "eth_sendTransaction", [{"from": sender, "data": LOG0_INIT_CODE}]
            )
            wait_receipt(chain.url, tx)  # automine answers before the block exists
        assert rpc_call(chain.url, "eth_blockNumber") == hex(LAG_BLOCKS)
        yield chain.url


@pytest.fixture
async def lagging(lag_chain: str) -> AsyncIterator[FaultyNode]:
    async with FaultyNode(lag_chain) as proxy:
        proxy.set_head_lag(2)
        yield proxy


async def test_head_lag_single_calls(lagging: FaultyNode) -> None:
    sender = rpc_call(lagging.upstream_url, "eth_accounts")[0]
    seen = LAG_BLOCKS - 2
    async with client(lagging) as rpc:
        assert await rpc.call("eth_blockNumber", []) == hex(seen)
        assert (await rpc.call("eth_getBlockByNumber", ["latest", False]))["number"] == hex(seen)
        assert await rpc.call("eth_getBlockByNumber", [hex(seen + 1), False]) is None
        top = rpc_call(lagging.upstream_url, "eth_getBlockByNumber", [hex(LAG_BLOCKS), False])
        assert await rpc.call("eth_getBlockByHash", [top["hash"], False]) is None
        assert await rpc.call("eth_getTransactionReceipt", [top["transactions"][0]]) is None
        logs = await rpc.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(LAG_BLOCKS)}])
        assert [log["blockNumber"] for log in logs] == [hex(n) for n in range(1, seen + 1)]
        assert await rpc.call("eth_getLogs", [{"fromBlock": hex(seen + 1)}]) == []
        assert await rpc.call("eth_getTransactionCount", [sender, "latest"]) == hex(seen)
        with pytest.raises(RpcError, match="header not found"):
            await rpc.call("eth_getBalance", [sender, hex(seen + 1)])
        lagging.set_head_lag(0)
        assert await rpc.call("eth_blockNumber", []) == hex(LAG_BLOCKS)


async def test_head_lag_batch(lagging: FaultyNode) -> None:
    seen = LAG_BLOCKS - 2
    async with client(lagging) as rpc:
        number, above, latest, logs, chain_id = await rpc.batch(
            [
                ("eth_blockNumber", []),
                ("eth_getBlockByNumber", [hex(LAG_BLOCKS), False]),
                ("eth_getBlockByNumber", ["latest", False]),
                ("eth_getLogs", [{"fromBlock": "earliest", "toBlock": "latest"}]),
                ("eth_chainId", []),
            ]
        )
    assert number == hex(seen)
    assert above is None
    assert latest["number"] == hex(seen)
    assert max(int(log["blockNumber"], 16) for log in logs) == seen
    assert chain_id == CHAIN_ID
    assert lagging.requests == 1


async def test_head_lag_with_faults(lagging: FaultyNode) -> None:
    lagging.fail_next(1, Fault.TRUNCATED_JSON)
    errors = Errors()
    async with client(lagging, errors) as rpc:
        blocks: list[Any] = await rpc.batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in range(LAG_BLOCKS + 1)]
        )
    assert [block is None for block in blocks] == [False] * (LAG_BLOCKS - 1) + [True] * 2
    assert len(errors.seen) == 1


# -- coalesced single calls (ledger.node.lean's client) -----------------------------------------


def coalescing(node: FaultyNode, *, retry: RetryPolicy = FAST) -> CoalescingRpcClient:
    return CoalescingRpcClient(
        node.url, timeout_s=PATIENT_TIMEOUT_S, retry=retry, transport="aiohttp"
    )


@pytest.mark.parametrize("reorder", [False, True], ids=["in-order", "reordered"])
async def test_calls_in_one_turn_leave_as_one_batch_each_with_its_own_answer(
    node: FaultyNode, reorder: bool
) -> None:
    node.reorder_batches = reorder
    async with coalescing(node) as rpc:
        answers: tuple[Any, ...] = await asyncio.gather(
            rpc.call("eth_chainId", []),
            rpc.call("eth_getBlockByNumber", ["0x0", False]),
            rpc.call("eth_getBlockByNumber", ["0xffffffff", False]),
            rpc.call("net_version", []),
            return_exceptions=True,
        )
        assert await rpc.call("eth_chainId", []) == CHAIN_ID  # alone: a single call
    assert answers[0] == CHAIN_ID
    assert answers[1]["number"] == "0x0"
    assert answers[2] is None
    assert answers[3] == str(ANVIL_CHAIN_ID)
    assert node.requests == 2


async def test_a_coalesced_error_is_its_callers_alone(node: FaultyNode) -> None:
    async with coalescing(node) as rpc:
        answers = await asyncio.gather(
            rpc.call("eth_chainId", []),
            rpc.call("tierflow_noSuchMethod", []),
            rpc.call("net_version", []),
            return_exceptions=True,
        )
    assert answers[0] == CHAIN_ID
    assert isinstance(answers[1], RpcError)
    assert answers[1].code == -32601
    assert answers[1].method == "tierflow_noSuchMethod"
    assert answers[2] == str(ANVIL_CHAIN_ID)
    assert node.requests == 1


async def test_a_transport_fault_reaches_every_caller_of_the_batch(node: FaultyNode) -> None:
    node.fail_next(1, Fault.HTTP_502)
    async with coalescing(node, retry=RetryPolicy(attempts=1)) as rpc:
        answers = await asyncio.gather(
            rpc.call("eth_chainId", []), rpc.call("net_version", []), return_exceptions=True
        )
        assert await rpc.call("eth_chainId", []) == CHAIN_ID  # the next turn: a fresh request
    assert all(isinstance(a, NodeUnavailable) for a in answers), answers


async def test_a_cancelled_caller_leaves_the_others_their_answers(node: FaultyNode) -> None:
    async with coalescing(node) as rpc:
        doomed = asyncio.ensure_future(rpc.call("eth_chainId", []))
        kept = asyncio.ensure_future(rpc.call("net_version", []))
        await asyncio.sleep(0)
        doomed.cancel()
        assert await kept == str(ANVIL_CHAIN_ID)
        with pytest.raises(asyncio.CancelledError):
            await doomed
