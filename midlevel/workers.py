"""Worker processes that end with the process that started them.

A ``ProcessPoolExecutor``'s workers wait on its task queue, a pipe whose both ends they
hold: when the process that started the pool is killed with SIGKILL (or by the
out-of-memory killer), nothing tells them, and they wait for ever, holding their memory
(audit 11b #5: a killed ``midlevel features`` left its fork server, two workers and a
resource tracker alive, 0.5 GB, until killed by hand). :func:`exit_with`, run by each worker when it starts, ends the worker when
that process ends; a fork server and a resource tracker then end with their last client.
"""
from __future__ import annotations

import os
import select
import threading
import time

__all__ = ["exit_with"]


def exit_with(pid: int) -> None:
    """End this process (``os._exit(1)``) when process ``pid`` ends, watched by a daemon
    thread: through a pidfd where the system has one (Linux >= 5.3; it sees the end even
    while ``pid`` waits, a zombie, for its parent to reap it), else by a check every second.
    For a pool's ``initializer``, with the pid of the process that makes the pool."""
    threading.Thread(target=_watch, args=(int(pid),), daemon=True,
                     name="midlevel-exit-with").start()


def _watch(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here, or pid gone already
        fd = None
    if fd is not None:
        select.select([fd], [], [])  # readable once pid has ended
        os._exit(1)
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, another user's
            pass
        time.sleep(1.0)
