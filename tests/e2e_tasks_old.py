"""The tasks of an older deploy, for rolling-deploy tests: none of e2e_tasks
is registered yet."""

import octobot


@octobot.task(name="e2e.retired")
def retired() -> None:
    """A task only the old code has."""
