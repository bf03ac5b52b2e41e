"""The errors of the weights manager; each message says what went wrong and what to run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tetrad.errors import UserError
from tetrad.weights.catalog import WeightEntry


class WeightsError(UserError, RuntimeError):
    """A checkpoint is corrupt, cannot be downloaded, or cannot be imported."""

    hint = "`tetrad weights list` shows what is present; `tetrad weights fetch` gets what can be downloaded"


class WeightsNotFound(WeightsError):
    """No usable checkpoint (real, or demo where allowed) exists; the message says what to run."""


class WeightsUnreachable(WeightsError):
    """No connection could be made to a download's host (offline, no DNS, refused, timed out connecting)."""


class WeightsMismatch(WeightsError):
    """A downloaded or copied file is not the pinned checkpoint (wrong sha256); nothing was written in its place."""


class ManualDownloadRequired(WeightsError):
    """The checkpoint cannot be downloaded automatically; the message holds the human instructions."""

    def __init__(self, message: str, entries: Sequence[WeightEntry] = (), fetched: Sequence[Path] = ()):
        super().__init__(message)
        self.entries = tuple(entries)
        self.fetched = list(fetched)
