"""The chart of a run (``bench.perf.report``): drawn from the figures or from a run's JSON,
one panel per path with the path's target; no platform runs here."""

from __future__ import annotations

import json
from pathlib import Path

from bench.perf.report import _chart_label, chart_from_json

PNG = b"\x89PNG\r\n\x1a\n"


def figure(
    name: str, operation: str, path: str, rate: float, ratio: float | None
) -> dict[str, object]:
    return {"name": name, "operation": operation, "path": path, "rate": rate, "ratio": ratio,
            "variant": ""}  # fmt: skip


def test_a_runs_chart_is_drawn_again_from_its_json(tmp_path: Path) -> None:
    run = {
        "started": "2026-12-07T07:09:14+00:00",
        "writes": [
            figure("split · ceiling · one holder", "split", "ceiling", 900.0, None),
            figure("split · sender · 16 clients · one holder", "split", "sender", 125.0, 0.14),
            figure("split · HTTP · 16 clients · one holder", "split", "http", 50.0, 0.05),
            figure(
                "split · HTTP self custody · 16 clients · one holder",
                "split",
                "http-self",
                26.0,
                0.03,
            ),
        ],
    }
    source = tmp_path / "run.json"
    source.write_text(json.dumps(run), encoding="utf-8")
    out = tmp_path / "chart.png"
    chart_from_json(source, out)
    assert out.read_bytes().startswith(PNG)
    assert out.stat().st_size > 10_000


def test_a_run_without_rated_writes_draws_nothing(tmp_path: Path) -> None:
    source = tmp_path / "run.json"
    source.write_text(json.dumps({"started": "x", "writes": []}), encoding="utf-8")
    out = tmp_path / "chart.png"
    chart_from_json(source, out)
    assert not out.exists()


def test_labels_drop_the_path_the_panel_names_but_keep_custody_and_database() -> None:
    class R:
        def __init__(self, name: str) -> None:
            self.name = name

    assert _chart_label(R("split · sender · 16 clients · one holder")) == (  # type: ignore[arg-type]
        "split · 16 clients · one holder"
    )
    assert _chart_label(R("split · HTTP self custody · 1 clients")) == (  # type: ignore[arg-type]
        "split · HTTP self custody · 1 clients"
    )
    assert _chart_label(R("split · HTTP PostgreSQL · 2 workers")) == (  # type: ignore[arg-type]
        "split · HTTP PostgreSQL · 2 workers"
    )
