"""What the page's background work shares: a lower CPU priority for its threads, and a stop when the app ends.

The near-duplicate hint's index and the Diversity map are built in threads of their own while people keep
working; both run at low priority and stop between two chunks when the process is ending.
"""
from __future__ import annotations

import os
import threading


def low_priority() -> None:
    """Lower the calling thread's CPU priority (Linux sets it per thread), so requests are served first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: the build runs at normal priority
        pass


class Closing(Exception):
    """The process is ending: a build in the background stops between two chunks of work."""


# Set when the interpreter starts shutting down, before it waits for the build threads (non-daemon ones):
# a daemon thread still inside torch when the process exits aborts it ("terminate called without an active
# exception"), so builds are waited for, and stop at their next chunk (what they embedded stays cached).
closing = threading.Event()
threading._register_atexit(closing.set)  # the stdlib's hook run before non-daemon threads are joined


def stop_if_closing(done: int = 0, total: int = 0) -> None:
    """A progress callback for background work: raises Closing once the app is ending."""
    if closing.is_set():
        raise Closing()
