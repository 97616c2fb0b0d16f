"""Octobot: a distributed task-queue worker.

    import octobot

    @octobot.task(name="emails.send")
    def send(to: str) -> None: ...

    octobot.Client("redis://127.0.0.1:6379/0").enqueue("emails", "emails.send", args=["a@b.c"])
"""

from octobot.envelope import BadMessage, Envelope
from octobot.tasks import task

__version__ = "0.1.0"
__all__ = ["BadMessage", "Client", "Envelope", "Middleware", "NotConfirmed", "TaskInfo", "task", "__version__"]


def __getattr__(name: str) -> object:
    # Client pulls in the backends; load it only when asked for.
    if name == "Client":
        from octobot.client import Client
        return Client
    if name in ("Middleware", "TaskInfo"):
        from octobot import middleware
        return getattr(middleware, name)
    if name == "NotConfirmed":
        from octobot.outbox import NotConfirmed
        return NotConfirmed
    raise AttributeError(name)
