"""Generate (or --check) Tierflow's Besu QBFT network configuration.

A thin wrapper around :func:`tierflow.besu.besu_command` (also exposed as
``tierflow besu-config``) for use straight from a checkout, e.g.::

    python chain/besu/generate.py --out /srv/tierflow-besu --host 10.0.0.11 --host 10.0.0.12 \
        --host 10.0.0.13 --host 10.0.0.14 --account 0x...
    python chain/besu/generate.py --check --out chain/besu/network

Run ``python chain/besu/generate.py --help`` for every option.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(_REPO_ROOT))

import typer  # noqa: E402

from tierflow.besu import besu_command  # noqa: E402


def main() -> None:
    """Run the generator command line."""
    typer.run(besu_command)


if __name__ == "__main__":
    main()
