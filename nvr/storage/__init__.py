"""Storage layer: the only code that touches files in sample-file directories.
``dir.py`` (meta file, open interlock, create/unlink/fsync), ``writer.py`` (one recording's
file and index), ``retention.py`` (pure deletion planning)."""
