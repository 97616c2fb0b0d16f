"""One log format for every Octobot process, with broker passwords redacted."""

import logging

from octobot.secrets import redact_text

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Formats a record, exception text included, then redacts every URL in it:
    a broker error or a library's log line may quote a URL with its password."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
