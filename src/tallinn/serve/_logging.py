"""Server logging: JSON lines in production, plain lines otherwise; always on stderr.

On stdio, stdout is the MCP wire, so nothing may ever log there. Every JSON line carries the
release served (`release`: its version, `folder` for a library served from a folder) and,
when it is written while a request is answered, that request's `request_id` and the release
that answered it.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import sys
from datetime import UTC, datetime

# (request id, release) of the request being answered; set by the server's middleware.
REQUEST: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "tallinn_request", default=None)
_IDS = itertools.count(1)
_PROCESS = f"{os.getpid():x}"


def next_request_id() -> str:
    """A request id unique in this process and apart from other processes': `1f3a-2c`."""
    return f"{_PROCESS}-{next(_IDS):x}"


class ServedContext(logging.Filter):
    """Adds `release` (and in a request `request_id`) to every record it passes.

    `release` outside a request is the release the server serves to most clients now, which
    the server sets (`ServedContext.serving`)."""

    serving = "folder"

    def filter(self, record: logging.LogRecord) -> bool:
        current = REQUEST.get()
        if current is not None:
            record.request_id, record.release = current
        elif not hasattr(record, "release"):
            record.release = ServedContext.serving
        return True

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    """Send every log record to stderr, as JSON lines when `json_lines`."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(ServedContext())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Migrations run when the store opens; their plugin chatter is not server news.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    # The SDK says "Terminating session: None" at INFO after every stateless request.
    logging.getLogger("mcp.server.streamable_http").setLevel(max(level, logging.WARNING))
    # The start-up line says what the server serves; the SDK's session manager would add a
    # line at start and one per session, uvicorn four about its own start and stop.
    logging.getLogger("mcp.server.streamable_http_manager").setLevel(max(level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.error").setLevel(max(level, logging.WARNING))
