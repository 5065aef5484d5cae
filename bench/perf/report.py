"""A run's outputs: ``bench/results/<name>.json`` (every figure, latencies summarised),
``docs/performance.md`` (tables between markers, the prose around them kept) and
``docs/performance.png`` (rates as ratios to the ceiling)."""

from __future__ import annotations

import json
import math
from pathlib import Path

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


def record_chart(results: Results, path: Path) -> None:
    """A bar per write figure: its rate as a share of the ceiling measured in the same run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rated = [r for r in results.writes if r.ratio is not None]
    if not rated:
        return
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rated) + 1.5))
    labels = [f"{r.name}{' · ' + r.variant if r.variant else ''}" for r in rated]
    ax.barh(labels, [r.ratio or 0.0 for r in rated], color="#3a6ea5")
    ax.axvline(0.8, color="#c0392b", linestyle="--", linewidth=1, label="target 0.8")
    ax.set_xlabel("rate / chain ceiling (same run)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_title(f"Tierflow writes against the chain's ceiling, {results.started}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
