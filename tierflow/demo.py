"""``tierflow demo``: a whole supply-chain finance story told through the HTTP API.

:func:`run_demo` is the scenario (the e2e test runs the very same function); the command
line only opens a console and prints the picture at the end. Everything goes through the
API with members' own keys, as a real deployment's clients would, the clock too: the chain's
time comes from ``GET /v1/deployment`` (due dates are chain time, and a chain that has run the
demo before is ahead of the wall clock), and, on the local development chain only, the
operator moves it past the due date with ``POST /v1/dev/advance-time`` so the payable can be
settled. The demo never talks to the node: it cannot read or move another chain's clock.

The story:

1. the operator onboards a core enterprise, a bank, a clearing agent, five suppliers on
   three tiers and an auditor, and sets the core's program limit; a tier-2 supplier and the
   bank are ``self`` custody (their keys are made in the demo's process and only their
   addresses go to the platform): each of their writes comes back as an intent that the
   client (``client/``, which every member of the demo speaks through) verifies and signs;
2. the tier-1 supplier registers two invoices to the core, the core confirms them and
   issues a payable naming its clearing agent;
3. tier 1 splits the claim to two tier-2 suppliers, each of them to a tier-3 supplier, every
   transfer citing a confirmed trade invoice from the recipient to the holder;
4. the bank sets a credit line on the core and an auto-approval policy; a tier-3 supplier
   looks at a quote and applies for a small amount, which the policy approves with no person
   involved (the platform prepares the approval, the bank's own signer loop signs it, as
   ``tierflow signer`` does beside a bank's HSM); tier 1 applies for a larger one, which
   the bank's officer approves by hand with the registry number and the disbursement
   reference;
5. the clock moves past the due date; the clearing agent (and the core, for the last piece)
   record the payment of every piece;
6. the auditor fetches the lineage tree, the exposure, the reconciliation of the mirror with
   the chain, and verifies the API's audit log;
7. all along, tier 1's webhook (registered right after onboarding, served by the demo
   itself) received the events it may see, each verified; the end shows what arrived.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from backend.config import ApiSettings
from tierflow.demo_actor import DemoError
from tierflow.demo_story import (
    DemoResult,
    Story,
    bank_terms,
    finance_automatically,
    finance_by_hand,
    issue,
    mature,
    onboard,
    pass_down,
    settle,
    snapshot_exposure,
)
from tierflow.demo_view import render
from tierflow.demo_webhooks import DemoWebhook

# -- the cast ----------------------------------------------------------------------------------


# -- the steps ---------------------------------------------------------------------------------


# -- the tree, as the API gives it ---------------------------------------------------------


# -- the run ------------------------------------------------------------------------------------

Step = Callable[[Story], Awaitable[str]]
AUDIT_STEP = "the auditor's view"
STEPS: tuple[tuple[str, Step], ...] = (
    ("onboarding the members", onboard),
    ("invoices, confirmation, the payable", issue),
    ("passing the claim down three tiers", pass_down),
    ("the bank's credit line and policy", bank_terms),
    ("a financing the policy approves", finance_automatically),
    ("a financing a person approves", finance_by_hand),
    ("exposure before maturity", snapshot_exposure),
    ("moving the clock past the due date", mature),
    ("settlement, piece by piece", settle),
)


async def run_demo(base_url: str, operator_key: str, console: Console | None = None) -> DemoResult:
    """Run the whole story against a running platform; return what the auditor saw."""
    console = console or Console(stderr=True)
    story = Story(base_url.rstrip("/"), operator_key, uuid.uuid4().hex[:8].upper())
    timings: dict[str, float] = {}
    hook = DemoWebhook()
    await hook.start()
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("", total=len(STEPS) + 1)
            for title, step in STEPS:
                progress.update(task, description=title)
                started = time.perf_counter()
                said = await step(story)
                timings[title] = time.perf_counter() - started
                progress.console.print(
                    f"[green]✓[/green] {said} [dim]({timings[title]:.1f} s)[/dim]"
                )
                progress.advance(task)
                if step is onboard:
                    # Tier 1 hears of everything it may see from here on, by webhook.
                    progress.console.print(
                        f"[green]✓[/green] {await hook.register(story['tier1'])}"
                    )
            progress.update(task, description=AUDIT_STEP)
            started = time.perf_counter()
            result = await audit(story)
            timings[AUDIT_STEP] = time.perf_counter() - started
            progress.console.print(
                "[green]✓[/green] the auditor read the lineage tree, the exposure, the "
                "reconciliation and the audit log "
                f"[dim]({timings[AUDIT_STEP]:.1f} s)[/dim]"
            )
            progress.advance(task)
            result.webhook = await hook.summary(story["tier1"])
        result.timings = timings
        return result
    finally:
        await hook.stop()
        await story.close()


async def audit(story: Story) -> DemoResult:
    auditor, bank = story["auditor"], story["bank"]
    payable_id = story.payable["id"]
    tree = await auditor.get(f"/v1/payables/{payable_id}/tree")
    payable = await auditor.get(f"/v1/payables/{payable_id}")
    core = story["core"].address
    exposure = (await auditor.get("/v1/audit/exposure", obligor=core))["items"]
    bank_exposure = (await auditor.get("/v1/audit/exposure", obligor=core, financier=bank.address))[
        "items"
    ]
    reconciliation = await auditor.get("/v1/audit/reconciliation")
    log = await auditor.get("/v1/audit/log/verify")
    if story.auto is None or story.manual is None:
        raise DemoError("the financing steps did not run")
    return DemoResult(
        base_url=story.base_url,
        chain_id=story.chain_id,
        members=dict(story.actors),
        names=story.names,
        payable=payable,
        tree=tree,
        exposure_before=story.exposure_before,
        exposure_after=exposure,
        bank_exposure_before=story.bank_exposure_before,
        bank_exposure_after=bank_exposure,
        reconciliation=reconciliation,
        audit_log=log,
        auto=story.auto,
        manual=story.manual,
        settlements=story.settlements,
    )


# -- the picture --------------------------------------------------------------------------------


# -- the command ---------------------------------------------------------------------------


def demo_command(
    base_url: Annotated[
        str | None,
        typer.Option(help="The API (default: http://$TIERFLOW_API_HOST:$TIERFLOW_API_PORT)."),
    ] = None,
    operator_key: Annotated[
        str | None,
        typer.Option(
            help="The operator's API key (default: $TIERFLOW_OPERATOR_API_KEY; `tierflow run` "
            "shows it once, in its summary, when a data directory first starts)."
        ),
    ] = None,
) -> None:
    """Run a full scenario through the HTTP API of a running platform (`tierflow run`):
    onboarding, invoices, a payable passed down three tiers, financing, settlement, audit."""
    settings = ApiSettings()
    console = Console(stderr=True)
    key = operator_key
    if key is None and settings.operator_api_key is not None:
        key = settings.operator_api_key.get_secret_value()
    if key is None:
        console.print(
            "[red]no operator key:[/red] pass --operator-key or set TIERFLOW_OPERATOR_API_KEY"
        )
        raise typer.Exit(2)
    base = base_url or settings.base_url
    try:
        result = asyncio.run(run_demo(base, key, console))
    except DemoError as exc:
        console.print(f"[red]the demo stopped:[/red] {exc}")
        raise typer.Exit(1) from exc
    except (httpx.HTTPError, OSError) as exc:
        console.print(f"[red]cannot reach the platform at {base}:[/red] {exc}")
        raise typer.Exit(1) from exc
    Console().print(render(result))
    if not (result.reconciliation.get("ok") and result.audit_log.get("ok")):
        raise typer.Exit(1)
