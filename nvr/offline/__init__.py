"""The offline tier: work on a database and its directories while the daemon is stopped.

What belongs here: ``admin.py`` (configuration changes: directories, cameras, users,
sessions for scripts; each opens what it needs and closes it again) and ``check.py``
(``nvr check``: every storage invariant verified, repairs only behind explicit flags).
Both take the database directory's lock, so they cannot run beside a daemon.

Not here: argument parsing and printing (``nvr.cli``), anything the running daemon does.
Layer: above ``nvr.storage`` and ``nvr.db``; only ``nvr.cli`` imports this package.
"""
