"""Errors a user can fix: a bad config, a missing or refused checkpoint, a malformed dataset, a bad command line.
The stages and the CLI print them as one line and a hint (`tetrad.env.guarded`); the traceback is kept for
`--verbose` / `TETRAD_DEBUG=1`, and for everything else, which is a bug."""

from __future__ import annotations

from typing import ClassVar


class UserError(Exception):
    """Base of the errors above; `hint` says where to look next."""

    hint: ClassVar[str] = ""
