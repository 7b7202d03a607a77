"""Database layer: the only place that speaks SQL.

``schema.sql`` is authoritative; ``raw.py`` holds the SQL statements; ``database.py`` the
synchronous API with the in-memory state (cameras, streams, dirs, pending recordings,
per-stream summaries); ``recording.py`` the ``video_index`` codec and recording value types.
Everything here runs in the trio thread in short transactions (DESIGN.md §4).
"""
