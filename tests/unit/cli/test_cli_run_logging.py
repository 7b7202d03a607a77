"""``nvr run``'s log lines: timestamps unless systemd's journal takes them."""

from __future__ import annotations

import logging
import time

from nvr.cli.run import text_format


def test_log_lines_have_timestamps_unless_under_journald() -> None:
    record = logging.LogRecord("nvr.daemon", logging.INFO, "", 0, "stopped", None, None)
    record.created, record.msecs = 1_764_680_000.25, 250  # 2025-12-02 12:53:20.250 UTC
    terminal = logging.Formatter(text_format({"TERM": "xterm"}))
    terminal.converter = time.gmtime
    assert terminal.format(record) == "2025-12-02 12:53:20,250 INFO nvr.daemon: stopped"
    journal = logging.Formatter(text_format({"JOURNAL_STREAM": "8:12345"}))
    assert journal.format(record) == "INFO nvr.daemon: stopped"
