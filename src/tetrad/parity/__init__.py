"""Parity checks: our re-implementations against the upstream code, run from a checkout of it."""
