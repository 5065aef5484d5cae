"""A run's outputs: ``bench/results/<name>.json`` (every figure, latencies summarised),
``docs/performance.md`` (tables between markers, the prose around them kept) and
``docs/performance.png`` (rates as ratios to the ceiling)."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.perf import auto_approval
from bench.perf.api_writes import application_verdict
from bench.perf.figures import Rate
from bench.perf.run import Results

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def ms(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def write_rows(rates: list[Rate]) -> list[str]:
    lines = [
        "| figure | writes | rate/s | ratio to ceiling | p50 | p99 | load before → after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rates:
        ratio = "1.00" if r.path == "ceiling" else (f"{r.ratio:.2f}" if r.ratio else "—")
        offered = f" (offered {r.offered:g}/s)" if r.offered else ""
        lines.append(
            f"| {r.name}{' · ' + r.variant if r.variant else ''} | {r.count:,} "
            f"| {r.rate:,.0f}{offered} | {ratio} | {ms(r.p50)} | {ms(r.p99)} "
            f"| {r.load_before:.2f} → {r.load_after:.2f} |"
        )
    return lines


def read_rows(results: Results) -> list[str]:
    lines = [
        "| read | workers | offered/s | achieved/s | alone | p50 | p99 | generator lag p99 "
        "| errors | load before → after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results.reads:
        lines.append(
            f"| {r.name} | {r.workers} | {r.offered:g} | {r.achieved:,.0f} | {ms(r.alone)} "
            f"| {ms(r.p50)} | {ms(r.p99)} | {ms(r.lag_p99)} | {r.errors} "
            f"| {r.load_before:.2f} → {r.load_after:.2f} |"
        )
    return lines


def render(results: Results) -> str:
    m = results.machine
    o = results.options
    size = "quick" if o.get("quick") else "full" if o.get("full") else "default"
    lines = [
        f"Run {results.started}, {m['cpus']} CPUs, Python {m['python']}, "
        f"load average at start {m['load_at_start']:.2f}, "
        f"{size} size, {results.seconds:,.0f} s in all.",
        "",
        "### Writes",
        "",
        *write_rows(results.writes),
    ]
    verdict = application_verdict(results.writes)
    if verdict:
        lines += ["", verdict]
    if results.reads:
        lines += ["", "### Reads (open loop)", "", *read_rows(results)]
    if results.indexer:
        lines += [
            "",
            "### Indexer",
            "",
            "| what | rate | ratio to fetch-only | aim | met |",
            "| --- | ---: | ---: | ---: | --- |",
            *(f"| {' | '.join(row)} |" for row in results.indexer),
        ]
    if results.indexer_lag:
        lines += [
            "",
            "| lag at 200 writes/s, a block a second | median | p99 |",
            "| --- | ---: | ---: |",
            *(f"| {' | '.join(row)} |" for row in results.indexer_lag),
        ]
    if results.scale:
        lines += [
            "",
            "### Scale (services and their JSON, SQLite mirror)",
            "",
            "| read | over rows | median | answer |",
            "| --- | ---: | ---: | ---: |",
            *(
                f"| {f.name} | {f.rows:,} | {ms(f.median_s)} | {f.answer_bytes / 1e6:.2f} MB |"
                for f in results.scale
            ),
        ]
    if results.auto_approval:
        lines += [
            "",
            "### Auto-approval: application to approval mined and mirrored, a block a second",
            "",
            *auto_approval.rows(results.auto_approval),
        ]
    if results.failures:
        lines += ["", "### Sections that failed in this run", ""]
        lines += [f"- {failure}" for failure in results.failures]
    if results.gas:
        lines += [
            "",
            "### Gas per operation",
            "",
            "| operation | gas | note |",
            "| --- | ---: | --- |",
            *(f"| {name} | {gas:,} | {note} |" for name, gas, note in results.gas),
        ]
    return "\n".join(lines) + "\n"


def record_markdown(results: Results, path: Path) -> None:
    """Replace the text between the markers of ``path`` (created if missing)."""
    body = render(results)
    text = path.read_text(encoding="utf-8") if path.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{body}{END}{tail}", encoding="utf-8")


def record_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.summary(), indent=2) + "\n", encoding="utf-8")


#: The chart's panels: which writes each shows, and the target its ratio is held against.
CHART_PANELS = (
    (("sender",), "Through the transaction layer (TransactionSender)", 0.8),
    (
        ("http", "http-self"),
        "Through HTTP (the API, answered once mined and mirrored), hosted and self custody",
        0.3,
    ),
)
#: One colour per operation, the same in every panel.
CHART_COLOURS = {
    "split": "#3a6ea5",
    "transfer": "#5b9bd5",
    "application": "#2e8b57",
    "approval": "#8fbc8f",
    "settlement batch": "#c9a227",
}


def record_chart(results: Results, path: Path) -> None:
    """The write figures as ratios to the ceiling measured in the same run: a panel for the
    transaction layer and one for HTTP, each with its target, a bar per figure coloured by
    operation and labelled with its rate."""
    chart(results.started, list(results.writes), path)


def chart(started: str, writes: Sequence[Any], path: Path) -> None:
    """Draw ``writes`` (:class:`Rate` or the same fields read back from a run's JSON)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = [
        (title, target, [r for r in writes if r.path in kinds and r.ratio is not None])
        for kinds, title, target in CHART_PANELS
    ]
    panels = [p for p in panels if p[2]]
    if not panels:
        return
    heights = [len(rows) + 2 for _, _, rows in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(13, 0.28 * sum(heights) + 1.6),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    top = max(max((r.ratio or 0.0) for _, _, rows in panels for r in rows), 0.8) * 1.15
    for ax, (title, target, rows) in zip(axes[:, 0], panels, strict=True):
        labels = [
            textwrap.fill(f"{_chart_label(r)}{' · ' + r.variant if r.variant else ''}", 64)
            for r in rows
        ]
        ratios = [r.ratio or 0.0 for r in rows]
        colours = [CHART_COLOURS.get(r.operation, "#777777") for r in rows]
        bars = ax.barh(range(len(rows)), ratios, color=colours)
        for bar, r in zip(bars, rows, strict=True):
            ax.text(
                bar.get_width() + top * 0.005,
                bar.get_y() + bar.get_height() / 2,
                f"{r.ratio:.2f} ({r.rate:,.0f}/s)",
                va="center",
                fontsize=7,
            )
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(target, color="#c0392b", linestyle="--", linewidth=1)
        ax.text(
            target, len(rows) - 0.4, f" target {target:g}", color="#c0392b", fontsize=8, va="bottom"
        )
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlim(0, top)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[-1, 0].set_xlabel("rate / the chain's ceiling for the same operation, same run")
    shown = {r.operation for _, _, rows in panels for r in rows}
    used = [op for op in CHART_COLOURS if op in shown]
    fig.legend(
        handles=[Patch(color=CHART_COLOURS[op], label=op) for op in used],
        loc="upper right",
        ncol=len(used),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        f"Tierflow writes against the chain's ceiling (run {started[:16]})",
        x=0.01,
        ha="left",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _chart_label(r: Rate) -> str:
    """A figure's name without its path where the panel says it: "split · sender · 16 clients
    · one holder" → "split · 16 clients · one holder"; "HTTP self custody", "HTTP PostgreSQL"
    stay."""
    parts = r.name.split(" · ")
    if len(parts) > 2 and parts[1] in ("sender", "HTTP"):
        del parts[1]
    return " · ".join(parts)


def chart_from_json(source: Path, path: Path) -> None:
    """Redraw the chart of a run from its ``bench/results/<name>.json``."""
    from types import SimpleNamespace

    data = json.loads(source.read_text(encoding="utf-8"))
    chart(data["started"], [SimpleNamespace(**w) for w in data["writes"]], path)


# Redraw a run's chart: python -m bench.perf.report bench/results/latest.json docs/performance.png
if __name__ == "__main__":
    import sys

    chart_from_json(Path(sys.argv[1]), Path(sys.argv[2]))
