"""Every ``TIERFLOW_*`` setting in one list: ``tierflow settings`` prints them with their
values, and the README's settings table is generated from the same list (a unit test keeps
the two in sync: ``tierflow settings --markdown`` prints the table to paste).

The list is the fields of the processes' settings classes (their ``description``), plus the
few variables read outside them (:data:`OTHER`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from backend.config import ApiSettings
from backend.webhooks.config import WebhookSettings
from indexer.config import IndexerSettings

PREFIX = "TIERFLOW_"

#: Variables read outside the settings classes: (name, default, description).
OTHER: tuple[tuple[str, str, str], ...] = (
    (
        "TIERFLOW_DEPLOYMENTS_DIR",
        "<data dir>/deployments under `tierflow run`, else chain/deployments",
        "where deployment records `<chainId>.json` are kept",
    ),
    (
        "TIERFLOW_REPO_ROOT",
        "the checkout holding the `ledger` package",
        "the checkout whose contracts, artifacts and chain/anvil.json are used",
    ),
)


@dataclass(frozen=True)
class Setting:
    variable: str
    default: str
    description: str
    secret: bool


def _default(field: Any) -> str:
    value = field.default
    if value is None or value == "":
        return "unset"
    return str(value)


def settings() -> list[Setting]:
    """Every setting, sorted by variable name."""
    found: dict[str, Setting] = {}
    classes: tuple[type[BaseSettings], ...] = (ApiSettings, IndexerSettings, WebhookSettings)
    for cls in classes:
        for name, field in cls.model_fields.items():
            variable = PREFIX + name.upper()
            secret = field.annotation is not None and "SecretStr" in str(field.annotation)
            found[variable] = Setting(variable, _default(field), field.description or "", secret)
    for variable, default, description in OTHER:
        found[variable] = Setting(variable, default, description, False)
    return sorted(found.values(), key=lambda s: s.variable)


def current_values() -> dict[str, str]:
    """The value each setting has in this environment (secrets only as set / unset)."""
    values: dict[str, str] = {}
    for model in (ApiSettings(), IndexerSettings(), WebhookSettings()):
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                shown = "set (hidden)"
            elif value is None:
                shown = "unset"
            else:
                shown = str(value)
            values[PREFIX + name.upper()] = shown
    return values


def markdown() -> str:
    """The README's settings table."""
    lines = ["| variable | default | what it sets |", "| --- | --- | --- |"]
    for s in settings():
        lines.append(f"| `{s.variable}` | {s.default} | {s.description} |")
    return "\n".join(lines) + "\n"
