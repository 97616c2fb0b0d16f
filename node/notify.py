"""Mail about dead-lettered tasks (the original Octobot's email settings of a
standalone node).

The node's log records of dead letters (node/execute.py marks them) go
through a queue to a thread that mails them, so a worker never waits for an
SMTP server; at most MAX_PER_MINUTE mails a minute go out, the rest are
counted in the next one. A mail that cannot be sent is said in one log line
(never the password), and the node goes on.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage

from octobot.logs import FORMAT, RedactingFormatter
from octobot.node.execute import DEAD_LETTER
from octobot.secrets import redact_text

log = logging.getLogger("octobot.node.notify")

MAX_PER_MINUTE = 10
SMTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class MailSettings:
    sender: str
    recipients: tuple[str, ...]
    server: str
    port: int
    ssl: bool = False  # TLS from the first byte (port 465); else STARTTLS when the server offers it
    username: str = ""
    password: str = ""  # with username: log in
    hostname: str = ""  # the name to greet the server with (default: this machine's)

    def __repr__(self) -> str:  # never the password
        return f"MailSettings({self.sender!r} -> {', '.join(self.recipients)} via {self.server}:{self.port})"


class _Mailer(logging.Handler):
    """Mails each record it gets; runs on the queue listener's thread."""

    def __init__(self, settings: MailSettings) -> None:
        super().__init__(logging.WARNING)
        self.settings = settings
        self._sent: list[float] = []
        self._held = 0  # records over the rate, told in the next mail

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        self._sent = [t for t in self._sent if t > now - 60]
        if len(self._sent) >= MAX_PER_MINUTE:
            self._held += 1
            return
        text = self.format(record)
        if self._held:
            text += f"\n\n({self._held} more dead letters since the last mail were not mailed)"
        try:
            self._send(f"octobot: {redact_text(record.getMessage())[:120]}", text)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("could not mail a dead-letter notice via %s:%d: %s: %s", self.settings.server,
                        self.settings.port, type(exc).__name__, str(exc)[:200])
            return
        self._sent.append(now)
        self._held = 0

    def _send(self, subject: str, text: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = s.sender, ", ".join(s.recipients), subject
        message.set_content(text)
        local = s.hostname or None
        context = ssl.create_default_context()
        if s.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.server, s.port, local_hostname=local, timeout=SMTP_TIMEOUT,
                                                  context=context)
        else:
            smtp = smtplib.SMTP(s.server, s.port, local_hostname=local, timeout=SMTP_TIMEOUT)
        with smtp:
            if not s.ssl and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
            if s.username:
                smtp.login(s.username, s.password)
            smtp.send_message(message)


def install(settings: MailSettings) -> logging.handlers.QueueListener:
    """Mail every dead letter logged in this process from now on."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    sender = logging.handlers.QueueHandler(records)
    [(key, _)] = DEAD_LETTER.items()
    sender.addFilter(lambda record: getattr(record, key, False))
    logging.getLogger("octobot.node.execute").addHandler(sender)
    mailer = _Mailer(settings)
    mailer.setFormatter(RedactingFormatter(FORMAT))
    listener = logging.handlers.QueueListener(records, mailer)
    listener.start()  # its thread is a daemon: it stops with the node
    return listener
