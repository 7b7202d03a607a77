"""Database layer: the only place that speaks SQL.

What belongs here: ``schema.sql`` (authoritative, commented) and ``raw.py`` (every SQL
statement, nothing else); ``connection.py`` (locking, creating and opening the database,
transactions, ``sqlite3`` error mapping); ``database.py``, the ``Database`` class,
assembled from ``core.py`` (shared state) and one mixin per job: ``catalog.py``
(directories, cameras, streams, sample entries), ``lifecycle.py`` (pending recordings,
flush, retention planning, garbage) and ``reads.py`` (listings, indexes, what ``nvr
check`` reads); the value types they take and return (``types.py``) and per-stream
totals by day (``stream_summary.py``); the ``video_index`` codec and ``VideoSampleEntry``
(``recording.py``), index summaries (``frames_summary.py``), users and sessions
(``auth.py``) and schema upgrades (``upgrade/``).

Not here: files of sample-file directories (``nvr.storage``), anything async. Everything
here runs in the trio thread in short transactions (docs/design.md, "Time"); of nvr it imports
only ``nvr.base``.
"""
