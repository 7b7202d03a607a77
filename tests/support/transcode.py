"""Helpers for the transcode tests."""

from __future__ import annotations

import threading


def join_transcode_threads() -> None:
    """Waits until no transcode thread (``nvr.transcode.Worker``) is left: one ends when
    its last call returns, once its worker is closed. Blocks: call it in a thread."""
    for t in threading.enumerate():
        if t.name.startswith("nvr-transcode"):
            t.join(60)  # (a bound for a broken test only)
            assert not t.is_alive()
