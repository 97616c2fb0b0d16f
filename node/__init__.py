"""The worker node: a session with the coordinator, consumers per queue, tasks."""
