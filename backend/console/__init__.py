"""The console's rendering layer (issue 12): server-rendered HTML pages for auditors, risk
officers and members, drawn from plain data shaped like the API's JSON.

- :class:`Console` renders every page (``tree_page``, ``claim_page``, ``tx_page``,
  ``exposure_page``, ``events_page``, ``reconciliation_page``, ``audit_log_page``,
  ``home_page``, ``sign_in_page``, ``error_page``), each returning a complete HTML document;
- :mod:`backend.console.tree` reads a tree answer, cuts the window a page shows and lays it
  out as SVG; :mod:`backend.console.charts` draws exposure;
- :data:`STATIC_DIR` holds the committed CSS and JS, served under ``Urls.static_base``.

It fetches nothing and checks no visibility: the routes pass in what the viewer may see.
"""

from __future__ import annotations

from pathlib import Path

from backend.console.pages import Console
from backend.console.tree import PieceNotInTree
from backend.console.urls import Urls

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "Console", "PieceNotInTree", "Urls"]
