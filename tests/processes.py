"""Process checks for the tests that kill stages: is a process still running (a zombie is not)?"""

from __future__ import annotations

import psutil


def alive(proc: psutil.Process) -> bool:
    """True while `proc` runs; False once it exited, reaped or not."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
