"""Logging follows the process's current stderr (pytest swaps it between tests)."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import structlog

from ledger.logs import configure_logging


def test_a_closed_earlier_stderr_is_not_written_to(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info", json=True)
    try:
        first.close()  # the stream logging was configured with is gone
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        structlog.get_logger("tierflow.test").warning("test.structlog", n=1)
        logging.getLogger("tierflow.test").warning("from logging")
        lines = [json.loads(line) for line in second.getvalue().splitlines()]
        assert [line["event"] for line in lines] == ["test.structlog", "from logging"]
        assert lines[0]["n"] == 1
    finally:
        structlog.reset_defaults()
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "tierflow", False):
                root.removeHandler(handler)
