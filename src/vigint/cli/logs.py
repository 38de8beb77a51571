"""Logging for every command: lines for people, or JSON lines for log shippers (`--log-format json`).

`--debug` shows Vigint's own debug lines; libraries (aiosqlite, asyncio, websockets, aiohttp) stay at INFO, so
their internals do not flood the output.
"""

import json
import logging
from datetime import datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object a line: time (ISO 8601 with its offset), level, logger, message, and the traceback if
    any."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).astimezone()
        document = {"time": moment.isoformat(timespec="milliseconds"),
                    "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def configure_logging(debug: bool, log_format: str) -> None:
    """Log to stderr in `log_format` (text or json); Vigint's own loggers at DEBUG if `debug`, else INFO."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("vigint").setLevel(logging.DEBUG if debug else logging.INFO)
