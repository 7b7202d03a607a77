"""Storage layer: the only code that touches files in sample-file directories.

What belongs here: ``dir.py`` (``SampleFileDir``: the meta file, the open interlock, every
file operation: create, write, fsync, unlink, trash, read), ``reader.py`` (the
``SampleFileReader`` protocol every sample-file read outside this package goes through),
``writer.py`` (one recording's file and index) and ``retention.py`` (which recordings to
delete for a free-space floor). Not here: SQL (``nvr.db``), trio tasks (the syncer and
streamers call these synchronous functions through ``nvr.base.blocking``). Of nvr it
imports ``nvr.base`` and ``nvr.db``.
"""
