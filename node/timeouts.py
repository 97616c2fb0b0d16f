"""Task time limits for worker threads.

Python cannot kill a thread, so a task that runs past its queue's
``task_timeout`` gets ``TaskTimeout`` raised inside it, through
``PyThreadState_SetAsyncExc`` (the mechanism Dramatiq's time limits use). It
lands at the task's next Python bytecode: a task blocked in one long C call
(``time.sleep``, a socket read without a timeout) sees it when the call
returns. It derives from BaseException so that a task's own ``except
Exception`` does not swallow it.
"""

from __future__ import annotations

import ctypes
import threading
from types import TracebackType


class TaskTimeout(BaseException):
    """The task ran longer than its queue's task_timeout."""


def _raise_in(thread_ident: int, exc_type: type[BaseException] | None) -> None:
    """Have ``exc_type`` raised in that thread at its next bytecode (None clears a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_ident),
                                               ctypes.py_object(exc_type) if exc_type else None)


class TaskGuard:
    """The task a worker thread is running, which another thread may interrupt.

        guard = TaskGuard()      # on the worker thread
        with guard:              # around each task call
            task()
        guard.interrupt()        # from any thread

    The lock makes interrupting and leaving the task exclusive, so the
    exception never lands in the worker's own code after the task.
    """

    def __init__(self) -> None:
        self._ident = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = False
        self._fired = False

    def __enter__(self) -> None:
        with self._lock:
            self._armed, self._fired = True, False

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._armed = False
            if self._fired:  # fired as the task returned: it may still be pending
                _raise_in(self._ident, None)

    def interrupt(self) -> bool:
        """Raise TaskTimeout in the running task, once; False if no task is running."""
        with self._lock:
            if not self._armed or self._fired:
                return False
            self._fired = True
            _raise_in(self._ident, TaskTimeout)
            return True
