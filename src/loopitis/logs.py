"""Logging: readable lines in development, one JSON object per line in production."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from datetime import UTC, datetime

from loopitis.settings import Settings

_CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# A consumer logs one line per execution, thousands a second: one encoder for
# all of them (json.dumps with options builds a new one per call).
_encode_json = json.JSONEncoder(ensure_ascii=False).encode
# Set by the gateway for the duration of one request; "-" elsewhere.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="-"
)


class ConsoleFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        # The local time of a second is computed once, not once per line.
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        current = request_id.get()
        return line if current == "-" else f"{line} [request {current}]"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (current := request_id.get()) != "-":
            entry["request_id"] = current
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encode_json(entry)


def configure_logging(settings: Settings, process: str) -> None:
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not settings.development
    )
    handler = logging.StreamHandler(sys.stderr)
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ConsoleFormatter(_CONSOLE_FORMAT))
    # Neither format shows threads or processes; not collecting them per record
    # makes each line cheaper.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # aiokafka logs every retry at ERROR; our own lines say what matters.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("loopitis").info("%s starting (env %s)", process, settings.env)
