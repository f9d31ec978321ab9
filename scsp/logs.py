"""Logging as text lines (default) or JSON lines, each naming its server and the current request's ids.

`setup_logging(level, fmt)`: `fmt` "text" (`2026-05-01T12:00:00.12Z INFO  service   scsp.dispatch
message key=value ...`) or "json" (one object per line). The service and the simulator may run in
one process (`scsp demo`): each line says which one wrote it, from the `server` context variable the
OCPI edge sets for its requests and its lifespan (and what they start), else from the logger name.

Tokens never reach a log: nothing here logs headers, and `redact` masks anything that looks like an
Authorization value in a message.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
# Which server writes: "service" or "simulator" (None outside both, e.g. a CLI command).
server: contextvars.ContextVar[str | None] = contextvars.ContextVar("server", default=None)

_TOKEN_RE = re.compile(r"(?i)(token|bearer)\s+[!-~]+")

# Attributes every LogRecord has; anything else passed as `extra=` becomes a JSON field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


def redact(text: str) -> str:
    """Mask `Token xyz` / `Bearer xyz` fragments."""
    return _TOKEN_RE.sub(lambda m: f"{m.group(1)} ***", text)


_base_factory = logging.getLogRecordFactory()


def _stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record carries the server of the context it was made in (formatting may happen elsewhere)."""
    record = _base_factory(*args, **kwargs)
    record.server = server.get()
    return record


if getattr(_base_factory, "__name__", "") != "_stamped":
    logging.setLogRecordFactory(_stamped)


def server_of(record: logging.LogRecord) -> str:
    """The server a record comes from: its context's, else the simulator's loggers, else the service."""
    name = getattr(record, "server", None) or server.get()
    if name:
        return str(name)
    return "simulator" if record.name.startswith(("scsp.simulator", "cposim")) else "service"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra=` fields of a record, tokens masked."""
    return {key: value if isinstance(value, (int, float, bool, type(None))) else redact(str(value))
            for key, value in vars(record).items()
            if key not in _STANDARD and key != "server" and not key.startswith("_")}


def _ts(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class TextFormatter(logging.Formatter):
    """One readable line: time (UTC), level, server, logger, message, then `key=value` fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        rid = request_id.get()
        if rid:
            fields["request_id"] = rid
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        line = (f"{_ts(record)} {record.levelname:<7} {server_of(record):<9} {record.name:<16} "
                f"{redact(record.getMessage())}" + (f"  {extra}" if extra else ""))
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, server, logger, message, ids, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname,
            "server": server_of(record),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        rid, cid = request_id.get(), correlation_id.get()
        if rid:
            entry["request_id"] = rid
        if cid:
            entry["correlation_id"] = cid
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, separators=(",", ":"))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Route our loggers (and uvicorn's errors) to stderr as text lines or JSON lines (`fmt`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for name in ("scsp", "cposim", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # httpx logs every request URL at INFO; our client logs what matters itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler logs every job run at INFO, in its own format; only its warnings are worth a line.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
