"""Exposure as inline SVG bar charts: per obligor its program limit, issued, outstanding,
financed and overdue value; per financier its exposure limit against what it has outstanding
on each obligor. Every bar is labelled with its name and its figure in words, so the chart
reads without colour, and the page repeats the figures in a table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from backend.console.fmt import clip_px, percent, short_hex, yuan

LABEL_W = 118
BAR_W = 300
VALUE_W = 190
ROW_H = 30
BAR_H = 16
TOP = 10


@dataclass(frozen=True, slots=True)
class ObligorExposure:
    obligor: str
    name: str
    program_limit: int | None
    issued: int | None
    outstanding: int | None
    financed: int
    overdue: int | None

    @property
    def utilisation(self) -> str | None:
        return percent(self.outstanding or 0, self.program_limit)

    @property
    def near_limit(self) -> bool:
        """At least 90 % of the program limit is outstanding (and not over it)."""
        if not self.program_limit or self.outstanding is None:
            return False
        return 10 * self.outstanding >= 9 * self.program_limit

    @property
    def over_limit(self) -> bool:
        return (
            self.program_limit is not None
            and self.outstanding is not None
            and self.outstanding > self.program_limit
        )


@dataclass(frozen=True, slots=True)
class FinancierLine:
    financier: str
    financier_name: str
    obligor: str
    obligor_name: str
    limit: int | None
    outstanding: int

    @property
    def available(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.outstanding)

    @property
    def utilisation(self) -> str | None:
        return percent(self.outstanding, self.limit)

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.outstanding > self.limit


@dataclass(frozen=True, slots=True)
class Financier:
    financier: str
    name: str
    lines: list[FinancierLine]


def _opt(row: Mapping[str, Any], key: str) -> int | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"exposure field {key!r} must be an integer number of fen")
    return value


def _name(address: str, given: Any, members: Mapping[str, Mapping[str, Any]]) -> str:
    if given:
        return str(given)
    entry = members.get(address.lower()) or {}
    return str(entry.get("name") or short_hex(address))


def read_exposure(
    rows: Sequence[Mapping[str, Any]], members: Mapping[str, Mapping[str, Any]]
) -> tuple[list[ObligorExposure], list[Financier]]:
    """``GET /v1/audit/exposure`` items: rows without ``financier`` are obligors' books, rows
    with one are that financier's exposure on the obligor (``exposure_limit``, ``financed``).
    Financiers come back in the order they first appear."""
    obligors: list[ObligorExposure] = []
    by_financier: dict[str, Financier] = {}
    for row in rows:
        obligor = str(row["obligor"])
        financier = row.get("financier")
        if financier is None:
            obligors.append(
                ObligorExposure(
                    obligor=obligor,
                    name=_name(obligor, row.get("obligor_name"), members),
                    program_limit=_opt(row, "program_limit"),
                    issued=_opt(row, "issued"),
                    outstanding=_opt(row, "outstanding"),
                    financed=_opt(row, "financed") or 0,
                    overdue=_opt(row, "overdue"),
                )
            )
            continue
        financier = str(financier)
        group = by_financier.setdefault(
            financier.lower(),
            Financier(financier, _name(financier, row.get("financier_name"), members), []),
        )
        group.lines.append(
            FinancierLine(
                financier=financier,
                financier_name=group.name,
                obligor=obligor,
                obligor_name=_name(obligor, row.get("obligor_name"), members),
                limit=_opt(row, "exposure_limit"),
                outstanding=_opt(row, "financed") or 0,
            )
        )
    return obligors, list(by_financier.values())


def _scale(values: Sequence[int | None]) -> int:
    return max([v for v in values if v is not None] + [1])


def _bar_width(value: int, scale: int) -> float:
    return BAR_W * value / scale if value > 0 else 0.0


def obligor_chart(row: ObligorExposure) -> Markup:
    """Five bars on one scale; the program limit also as a dashed rule across them."""
    bars = [
        ("limit", "Program limit", row.program_limit),
        ("issued", "Issued", row.issued),
        ("outstanding", "Outstanding", row.outstanding),
        ("financed", "Financed", row.financed),
        ("overdue", "Overdue", row.overdue),
    ]
    scale = _scale([v for _, _, v in bars])
    width = LABEL_W + BAR_W + VALUE_W
    height = TOP * 2 + ROW_H * len(bars)
    e = escape
    parts = [
        f'<svg class="chart exposure" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Exposure on {e(row.name)}">'
    ]
    for i, (key, label, value) in enumerate(bars):
        y = TOP + i * ROW_H
        text_y = y + ROW_H / 2 + 4
        parts.append(f'<g class="bar b-{key}" data-key="{key}" data-value="{value or 0}">')
        parts.append(f'<text class="label" x="0" y="{text_y:.1f}">{label}</text>')
        parts.append(
            f'<rect class="track" x="{LABEL_W}" y="{y + (ROW_H - BAR_H) / 2:.1f}" '
            f'width="{BAR_W}" height="{BAR_H}"/>'
        )
        if value is None:
            parts.append(f'<text class="value" x="{LABEL_W + 6}" y="{text_y:.1f}">n/a</text>')
        else:
            w = _bar_width(value, scale)
            parts.append(
                f'<rect class="fill" x="{LABEL_W}" y="{y + (ROW_H - BAR_H) / 2:.1f}" '
                f'width="{w:.1f}" height="{BAR_H}"/>'
            )
            parts.append(
                f'<text class="value" x="{LABEL_W + BAR_W + 8}" y="{text_y:.1f}">'
                f"{e(yuan(value))}</text>"
            )
        parts.append("</g>")
    if row.program_limit:
        x = LABEL_W + _bar_width(row.program_limit, scale)
        parts.append(
            f'<line class="limit-rule" x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" '
            f'y2="{height - TOP + 4}"><title>program limit {e(yuan(row.program_limit))}'
            f"</title></line>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def financier_chart(group: Financier) -> Markup:
    """One bullet bar per obligor: the limit as the hollow bar, outstanding as the solid one;
    above it the obligor's name and the figures in words."""
    scale = _scale([v for line in group.lines for v in (line.limit, line.outstanding)])
    width = 600
    row = 50
    height = TOP + row * len(group.lines)
    e = escape
    parts = [
        f'<svg class="chart financier" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Exposure of {e(group.name)} by obligor">'
    ]
    for i, line in enumerate(group.lines):
        y = TOP + i * row
        over = " over" if line.over_limit else ""
        parts.append(
            f'<g class="bullet{over}" data-obligor="{e(line.obligor)}" '
            f'data-limit="{line.limit if line.limit is not None else ""}" '
            f'data-outstanding="{line.outstanding}">'
        )
        parts.append(
            f'<text class="label" x="0" y="{y + 12}">{e(clip_px(line.obligor_name, 260, 12))}'
            f"<title>{e(line.obligor_name)} {e(line.obligor)}</title></text>"
        )
        share = line.utilisation
        limit_text = "no limit set" if line.limit is None else f"of {yuan(line.limit)}"
        text = f"{yuan(line.outstanding)} {limit_text}"
        if share:
            text += f" · {share}"
        if line.over_limit:
            text += " · OVER LIMIT"
        parts.append(f'<text class="value end" x="{width}" y="{y + 12}">{e(text)}</text>')
        track = width * 1.0
        if line.limit is not None:
            parts.append(
                f'<rect class="limit" x="0" y="{y + 19}" '
                f'width="{track * line.limit / scale:.1f}" height="16"/>'
            )
        parts.append(
            f'<rect class="fill" x="0" y="{y + 23}" '
            f'width="{track * line.outstanding / scale if line.outstanding > 0 else 0:.1f}" '
            f'height="8"/>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
