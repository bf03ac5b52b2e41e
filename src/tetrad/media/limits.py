"""Per-file limits (extract.limits): one pathological file (an hour-long recording, a decoder that never ends)
must not take a run's time or a worker's memory. A file over a limit gets its status (`too_long`, `too_large`,
`timeout`) and one line, like any other file that cannot be processed."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import av

from tetrad.schemas import TIMEOUT, TOO_LARGE, TOO_LONG, StatusError


def header_limits(max_duration_s: float, max_megapixels: float) -> Callable[[av.container.InputContainer], None]:
    """A check for decode()'s open container (the header only: nothing is decoded, the file is opened once):
    `too_long` when the media lasts more than `max_duration_s`, `too_large` when its video frames hold more than
    `max_megapixels`. A header that says nothing passes."""
    def check(container: av.container.InputContainer) -> None:
        seconds = container.duration / av.time_base if container.duration else None
        if seconds is not None and seconds > max_duration_s:
            raise StatusError(TOO_LONG, f"{container.name}: lasts {seconds:.1f} s, over "
                                        f"extract.limits.max_duration_s={max_duration_s:g}")
        video = container.streams.video[0].codec_context if container.streams.video else None
        if video is not None and video.width * video.height > max_megapixels * 1e6:
            raise StatusError(TOO_LARGE, f"{container.name}: {video.width}x{video.height} frames, over "
                                         f"extract.limits.max_megapixels={max_megapixels:g}")
    return check


class _Expired(BaseException):
    """Raised by the timer; a BaseException, so that no `except Exception` in a library swallows it."""


@contextlib.contextmanager
def time_limit(seconds: float, path: Path) -> Iterator[None]:
    """Turn a block that runs longer than `seconds` into a `timeout` StatusError (SIGALRM: the main thread of a
    process, as an extract worker runs its videos; elsewhere the block runs unlimited)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Expired()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise StatusError(TIMEOUT, f"{path}: took longer than extract.limits.timeout_s={seconds:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
