"""Ingest layer: reading cameras. ``source.py`` defines what a source of frames is,
``pyav.py`` is the only module that imports ``av`` to read RTSP and files, and
``streamer.py`` runs one stream: open, read, rotate recordings, reconnect."""
