"""The operations tier: how a running daemon is watched from outside.

What belongs here: ``liveness.py`` (``Liveness``: is a syncer stuck, a streamer wedged, the
event loop blocked? and the systemd watchdog pings that depend on it), ``metrics.py``
(Prometheus metrics read at scrape time from what the other parts keep) and
``systemd.py`` (``sd_notify`` messages). They observe the recording parts; they change
nothing there.

Not here: serving the metrics over HTTP (``nvr.web``), starting these tasks (``nvr.daemon``).
Layer: above ``nvr.ingest``, ``nvr.syncer``, ``nvr.storage`` and ``nvr.db``; below
``nvr.web``.
"""
