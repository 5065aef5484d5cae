"""Structured logs: one JSON object per line on stderr (or key=value lines on a terminal).

Modules log with ``structlog.get_logger("tierflow.<part>")`` and keyword fields
(``log.info("indexer.batch", start=…, end=…)``), or with the standard library's ``logging``
(uvicorn, the API's problem handlers), which goes through the same renderer;
:func:`configure_logging` is called once by the command line (and by an API worker process
that uvicorn spawned). ``TIERFLOW_LOG_FORMAT`` chooses json or console.
"""

from __future__ import annotations

import logging
import sys

import structlog

#: Whether this process configured its logging (a spawned API worker has not yet).
configured = False


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured: a
    process that swaps its stderr (pytest's capture, a daemon redirecting it) keeps logging
    instead of writing to a closed stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


STDERR = _Stderr()


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """Route structlog, and the standard library's ``logging`` (uvicorn's, the API's), to
    stderr at ``level``: one JSON object a line unless stderr is a terminal (or ``json``
    says otherwise), so each process's log is one structured stream."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    handler = logging.StreamHandler(STDERR)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "tierflow", False):  # ours from an earlier call; others stay
            root.removeHandler(old)
    handler.tierflow = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # One line per HTTP call the indexer or the webhooks make would drown the log.
    for chatty in ("httpx", "web3"):
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    global configured
    configured = True
