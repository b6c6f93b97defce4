"""Structured logging: one JSON object per line on standard output (structlog)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import structlog

__all__ = ["configure_logging", "get_logger"]


def configure_logging(
    level: str = "info", extra: Sequence[structlog.typing.Processor] = ()
) -> None:
    """JSON lines with a timestamp, the level and the event; safe to call more than once.

    `extra` processors add fields to every line (tracing adds the trace id)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *extra,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
