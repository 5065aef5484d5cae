"""``tierflow signer``: a ``self`` member's own signer, run beside its key (a key file or an
HSM through PKCS#11). It looks every ``--interval`` seconds for the member's open intents and
signs, at once and several at a time (:data:`client.commands.SIGN_CONCURRENCY`), those that
verify against the deployment (:func:`client.intents.verify_intent`) and that its policy file
accepts (:func:`client.commands.run_signer`): this is how a ``self`` bank keeps auto-approval
without the platform holding its key. An approval is signed only when it gives the applicant
at least its committed ``min_advance`` and its committed recourse
(:func:`client.commands.honouring_commitments`).

The policy file is JSON, the member's own rules, checked on the decoded action (not on the
API's plain fields)::

    {"functions": ["approveFinancing"],   # contract functions it signs (required)
     "max_value": 1000000000,             # optional: no integer argument above this
     "counterparties": ["0x…"]}           # optional: address arguments must be among these
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from backend.config import ApiSettings


def policy_from_file(path: Path) -> Any:
    """The decision function of a policy file (see the module docstring)."""
    from client.intents import DecodedAction

    rules = json.loads(path.read_text())
    functions = set(rules.get("functions") or ())
    if not functions:
        raise ValueError(f"{path}: `functions` names no function to sign")
    max_value = rules.get("max_value")
    counterparties = {c.lower() for c in rules.get("counterparties") or ()}

    def decide(action: DecodedAction) -> bool:
        if action.function not in functions:
            return False
        if max_value is not None and any(v > max_value for v in action.amounts.values()):
            return False
        return not counterparties or all(
            a.lower() in counterparties for a in action.counterparties.values()
        )

    return decide


def signer_command(
    policy: Annotated[Path, typer.Option(help="The member's policy file (JSON).")],
    api_key: Annotated[
        str, typer.Option(envvar="TIERFLOW_SIGNER_API_KEY", help="The member's API key.")
    ],
    base_url: Annotated[
        str | None, typer.Option(help="The API (default: from the settings).")
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option(help="An encrypted keyfile or a raw key file.")
    ] = None,
    password: Annotated[
        str | None, typer.Option(envvar="TIERFLOW_SIGNER_PASSWORD", help="The keyfile's password.")
    ] = None,
    hsm: Annotated[bool, typer.Option("--hsm", help="Sign with a PKCS#11 key.")] = False,
    hsm_token: Annotated[str | None, typer.Option(help="The token's label.")] = None,
    hsm_pin: Annotated[
        str | None, typer.Option(envvar="TIERFLOW_SIGNER_HSM_PIN", help="The token's PIN.")
    ] = None,
    hsm_key: Annotated[str | None, typer.Option(help="The key's label on the token.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between looks for new intents.")] = 1.0,
) -> None:
    """Sign this member's open intents that its policy file accepts, until Ctrl-C."""
    from client import TierflowClient
    from client.commands import honouring_commitments, open_signer, run_signer

    console = Console(stderr=True)
    try:
        decide = policy_from_file(policy)
        if hsm:
            signer = open_signer(hsm_token=hsm_token, hsm_pin=hsm_pin, hsm_key=hsm_key)
        elif keyfile is not None:
            signer = open_signer(keyfile=str(keyfile), password=password)
        else:
            raise ValueError("give --keyfile or --hsm")
    except (OSError, ValueError) as exc:
        console.print(f"[red]signer not started:[/red] {exc}")
        raise typer.Exit(2) from exc
    base = base_url or ApiSettings().base_url
    console.print(f"signing as {signer.address} for {base}")

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with TierflowClient(base, api_key, signer=signer) as client:
            await run_signer(
                client,
                # never an approval below the applicant's committed min_advance or recourse
                policy=honouring_commitments(client, decide),
                interval_s=interval,
                stop=stop,
                on_outcome=lambda o: console.print(f"{o.intent_id}: {o.outcome} {o.detail or ''}"),
            )

    asyncio.run(go())
