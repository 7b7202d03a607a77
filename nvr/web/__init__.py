"""Web layer: the HTTP side of the daemon, and the browser UI it serves.

What belongs here: ``context.py`` (``WebContext``, what routes read; responses and
argument helpers; the one table of error kinds to statuses), ``app.py`` (``create_app``:
one quart-trio app per bind, error answers, request metrics), ``server.py`` (nvr's accept
loop around hypercorn's per-connection server: connection limits, timeouts, graceful
stop), ``auth.py`` (the permission table, callers, sessions, CSRF), ``login_limit.py``
(password guesses and hash slots), the routes: ``api.py`` (JSON), ``view.py`` (``.mp4``,
``.m4s``, init segments), ``live.py`` (the ``live.m4s`` WebSocket), ``metrics_route.py``
(``/metrics``), ``ui.py`` with ``static/`` and ``templates/`` (the UI); see docs/api.md.

Not here: SQL (``nvr.db``'s read API), sample-file access except through
``nvr.storage``'s reader, tasks of its own (the daemon starts the server), API JSON built
anywhere else. Layer: above everything but ``nvr.daemon`` and ``nvr.cli``
(docs/design.md, "Layers and packages").
"""
