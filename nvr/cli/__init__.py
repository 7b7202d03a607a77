"""The ``nvr`` command (``nvr = "nvr.cli:main"``): argument parsing, printing, exit status.

What belongs here: ``command.py`` (the parser of every command and ``main``: one-line error
reports), and one module per command group with its parsers beside its handlers:
``run.py`` (``nvr run``: the daemon, logging), ``database.py`` (``init``, ``upgrade``),
``check.py``, ``dirs.py``, ``cameras.py`` and ``users.py`` (``nvr config ...``; users also
``nvr login``), ``ts.py``, and ``demo.py`` (``nvr demo``: a throw-away recorder of
synthetic cameras); ``common.py`` what they share.

Not here: the work itself. A handler parses, calls the layer that does it (``nvr.daemon``,
``nvr.offline``, ``nvr.db``) and prints. Layer: the top; nothing imports ``nvr.cli`` but
``nvr.__main__``.
"""

from nvr.cli.command import main

__all__ = ["main"]
