"""Reading recordings' sample files: the one way anything outside ``nvr.storage`` does.

``SampleFileReader`` is what holds sample files (today a ``SampleFileDir``, a local
directory; an archive tier may add one that reads ranges of objects over HTTP): it opens
a recording's file for reading and tells its size. ``SampleFile`` is one open file: a
server reads a response's bytes from it chunk by chunk, ``nvr check`` hashes it. Keeping
the file open keeps its bytes readable even if retention unlinks it meanwhile.

The calls block (file I/O): callers in trio go through ``nvr.base.blocking.run_blocking``.
Errors are ``NvrError`` kinds.
"""

from __future__ import annotations

from typing import Protocol


class SampleFile(Protocol):
    """One open sample file."""

    def pread(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer only at the end of the file)."""
        ...

    def close(self) -> None: ...


class SampleFileReader(Protocol):
    def open_for_reading(self, composite_id: int) -> SampleFile:
        """Opens the recording's sample file (``NotFound`` if there is none)."""
        ...

    def file_size(self, composite_id: int) -> int | None:
        """The size of the recording's sample file, or None if there is none."""
        ...
