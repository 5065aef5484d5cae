"""Every ``TIERFLOW_*`` setting is described, and the README's settings table is the one
``tierflow settings --markdown`` generates (so a new setting cannot go undocumented)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from tierflow import settings as settings_list
from tierflow.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", re.S)


def test_every_setting_is_described() -> None:
    missing = [s.variable for s in settings_list.settings() if not s.description]
    assert not missing, f"give these settings a Field(description=...): {missing}"


def test_the_readme_table_is_the_generated_one() -> None:
    found = BLOCK.search(README.read_text(encoding="utf-8"))
    assert found is not None, "README.md lost its settings block"
    assert found.group(1) == settings_list.markdown(), (
        "README.md's settings table is out of date: paste `tierflow settings --markdown` "
        "between the settings markers"
    )


def test_settings_command_shows_values_and_hides_secrets() -> None:
    runner = CliRunner()
    env = {"TIERFLOW_API_PORT": "18123", "TIERFLOW_KEYSTORE_SECRET": "very-secret-password-1"}
    result = runner.invoke(app, ["settings"], env=env, terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "18123" in result.output
    assert "very-secret-password-1" not in result.output
    assert "set (hidden)" in result.output
    names = {s.variable for s in settings_list.settings()}
    assert {"TIERFLOW_CHAIN_PORT", "TIERFLOW_API_PORT", "TIERFLOW_METRICS_PORT"} <= names
    for name in names:
        assert name in result.output


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"tierflow \d+\.\d+\.\d+\S*\n", result.output)
