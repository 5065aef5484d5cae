"""What the command line's ``tierflow signer`` and ``tierflow demo`` call, as plain async
functions (the CLI itself lives in the ``tierflow`` package).

- :func:`sign_open_intents` signs, once, every open intent of the client's member that
  verifies and that ``policy`` accepts; :func:`run_signer` looks for new ones every
  interval until stopped and signs each at once, several at a time (a signature's answer
  waits for the relayed request to be mined and mirrored, and no intent waits for another's).
  This is
  the signer a ``self`` bank runs beside its HSM so that auto-approval keeps working without
  the platform holding the bank's key: the platform prepares the approvals its policy
  matches as intents, and the bank's own policy (``policy``) re-checks each before signing.
- :func:`open_signer` opens a key file or an HSM key from plain settings;
  :func:`ensure_pkcs11_key` finds or makes a member's key on a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from client.client import TierflowClient
from client.errors import IntentRejected, SigningDeclined, TierflowError
from client.intents import DecodedAction
from client.signing import (
    DEFAULT_PKCS11_MODULE,
    KeyfileSigner,
    Pkcs11Signer,
    Signer,
    generate_pkcs11_key,
    pkcs11_key_address,
)

__all__ = [
    "SignerOutcome",
    "ensure_pkcs11_key",
    "honouring_commitments",
    "open_signer",
    "run_signer",
    "sign_open_intents",
]

log = logging.getLogger("tierflow.client.signer")

#: ``policy(action) -> bool``: whether the member signs this decoded action.
Policy = Callable[[DecodedAction], bool | Awaitable[bool]]


def honouring_commitments(
    client: TierflowClient, policy: Policy | None = None
) -> Callable[[DecodedAction], Awaitable[bool]]:
    """``policy``, and for ``approveFinancing`` also: the terms give at least the applicant's
    committed ``min_advance`` and its committed recourse (read from the request). The desk
    refuses any other approval anyway; this keeps the signer from signing one."""

    async def decide(action: DecodedAction) -> bool:
        if action.function == "approveFinancing":
            terms = action.args.get("terms")
            financing_id = action.args.get("financingId")
            if not isinstance(terms, dict) or not isinstance(financing_id, int):
                return False
            request = await client.financing.get(financing_id)
            if int(terms["advance"]) < (request.min_advance or 0):
                log.info("approval of %s declined: below its min_advance", financing_id)
                return False
            if request.recourse is not None and bool(terms["recourse"]) != request.recourse:
                log.info("approval of %s declined: not its committed recourse", financing_id)
                return False
        if policy is None:
            return True
        verdict = policy(action)
        return bool(await verdict) if inspect.isawaitable(verdict) else bool(verdict)

    return decide


@dataclass(frozen=True)
class SignerOutcome:
    """What the signer did with one intent."""

    intent_id: str
    outcome: Literal["signed", "declined", "rejected", "failed"]
    detail: str | None = None
    answer: dict[str, Any] | None = None


#: Intents a signer signs at once: each signature's answer waits for the relayed request to
#: be mined and mirrored (a block or two), so one at a time made the tenth intent of a burst
#: wait for the nine before it.
SIGN_CONCURRENCY = 32


async def _sign_one(client: TierflowClient, intent: Any, policy: Policy | None) -> SignerOutcome:
    try:
        answer = await client.sign_intent(intent, confirm=policy)
    except IntentRejected as exc:
        log.warning("intent %s refused: %s", intent.id, exc.reason)
        return SignerOutcome(intent.id, "rejected", exc.reason)
    except SigningDeclined:
        log.info("intent %s declined by the policy", intent.id)
        return SignerOutcome(intent.id, "declined")
    except TierflowError as exc:  # the API refused it, or could not be reached: try again
        log.warning("intent %s: the signature was not taken: %s", intent.id, exc)
        return SignerOutcome(intent.id, "failed", str(exc))
    return SignerOutcome(intent.id, "signed", answer=answer)


def _open(intent: Any) -> bool:
    return intent.status in (None, "open", "awaiting_signature")


async def sign_open_intents(
    client: TierflowClient,
    *,
    policy: Policy | None = None,
    skip: set[str] | None = None,
    concurrency: int = SIGN_CONCURRENCY,
) -> list[SignerOutcome]:
    """Go once through the member's open intents: verify each, ask ``policy`` (default: the
    client's ``confirm``, else accept), sign and post, up to ``concurrency`` at once. An
    intent that fails verification or is declined is left unsigned (it expires and blocks
    nothing); ids in ``skip`` are not looked at again."""
    intents = [
        intent
        async for intent in client.intents.list()
        if _open(intent) and (skip is None or intent.id not in skip)
    ]
    gate = asyncio.Semaphore(concurrency)

    async def one(intent: Any) -> SignerOutcome:
        async with gate:
            return await _sign_one(client, intent, policy)

    return list(await asyncio.gather(*(one(intent) for intent in intents)))


async def run_signer(
    client: TierflowClient,
    *,
    policy: Policy | None = None,
    interval_s: float = 1.0,
    stop: asyncio.Event | None = None,
    on_outcome: Callable[[SignerOutcome], Any] | None = None,
    concurrency: int = SIGN_CONCURRENCY,
) -> None:
    """Look for the member's open intents every ``interval_s`` until ``stop`` is set; each new
    one is signed at once, up to ``concurrency`` at a time, while the next looks go on (a
    signature's answer waits for its relayed request to be mined and mirrored: an intent
    prepared meanwhile does not wait for it). An intent that was refused or declined is not
    asked about again; the API being down is logged and waited out; on stop, the signatures
    under way finish."""
    stop = stop or asyncio.Event()
    settled: set[str] = set()
    inflight: dict[str, asyncio.Task[None]] = {}
    gate = asyncio.Semaphore(concurrency)

    async def handle(intent: Any) -> None:
        async with gate:
            outcome = await _sign_one(client, intent, policy)
        if outcome.outcome in ("rejected", "declined"):
            settled.add(outcome.intent_id)
        if on_outcome is not None:
            result = on_outcome(outcome)
            if inspect.isawaitable(result):
                await result

    def forget(intent_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            inflight.pop(intent_id, None)

        return done

    try:
        while not stop.is_set():
            try:
                async for intent in client.intents.list():
                    if not _open(intent) or intent.id in settled or intent.id in inflight:
                        continue
                    task = asyncio.create_task(handle(intent), name=f"sign-{intent.id}")
                    inflight[intent.id] = task
                    task.add_done_callback(forget(intent.id))
            except TierflowError as exc:
                log.warning("listing intents failed: %s", exc)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that
            # comes as ``stop`` is set.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await stop.wait()
    finally:
        if inflight:
            await asyncio.gather(*inflight.values(), return_exceptions=True)


def open_signer(
    *,
    keyfile: str | None = None,
    password: str | None = None,
    hsm_token: str | None = None,
    hsm_pin: str | None = None,
    hsm_key: str | None = None,
    hsm_module: str = DEFAULT_PKCS11_MODULE,
) -> Signer:
    """A signer from command-line style settings: a key file (and its password), or an HSM
    token, PIN and key label."""
    if keyfile is not None:
        return KeyfileSigner.from_file(keyfile, password)
    if hsm_token is None or hsm_pin is None or hsm_key is None:
        raise ValueError("give a key file, or an HSM token, PIN and key label")
    return Pkcs11Signer(hsm_token, hsm_pin, hsm_key, module=hsm_module)


def ensure_pkcs11_key(
    token_label: str, pin: str, key_label: str, *, module: str = DEFAULT_PKCS11_MODULE
) -> str:
    """The address of the secp256k1 key ``key_label`` on the token, generated there first if
    the token has none of that label."""
    found = pkcs11_key_address(token_label, pin, key_label, module=module)
    if found is not None:
        return found
    return generate_pkcs11_key(token_label, pin, key_label, module=module)
