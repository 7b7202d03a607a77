"""Fault injection for sample-file directories.

``FaultyDir`` is a ``SampleFileDir`` whose operations can be told to fail with an errno
(``ENOSPC``, ``EIO``...) a number of times or until healed, optionally after a partial
write, or to "crash" (raise ``SimulatedCrash``, a ``BaseException`` nothing catches) at the
n-th call of an operation. It counts every call so tests can assert what was attempted.
Reads count too: ``open_for_reading``, and ``read`` (each ``pread`` of a file it opened).
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nvr.base import errors
from nvr.storage.dir import SampleFileDir
from nvr.storage.reader import SampleFile

OPS = ("create_file", "write_all", "truncate", "close_file", "sync_file", "sync", "unlink",
       "open_for_reading", "read")


class SimulatedCrash(BaseException):
    """The process "died" here: tests drop all in-memory state and reopen."""


@dataclass(slots=True)
class _Fault:
    errno: int
    remaining: int | None  # None: until healed
    partial: bool


class FaultyDir(SampleFileDir):
    """See the module docstring. Make one with ``FaultyDir.wrap(sdir)``."""

    @classmethod
    def wrap(cls, sdir: SampleFileDir) -> FaultyDir:
        d = cls(sdir.path, sdir._fd, sdir.meta)
        sdir._fd = -1  # ownership moves to the wrapper
        return d

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: Counter[str] = Counter()
        self._faults: dict[str, _Fault] = {}
        self._crash_at: dict[str, int] = {}

    def fail(
        self,
        op: str,
        errno: int = errno_mod.EIO,
        *,
        times: int | None = None,
        partial: bool = False,
    ) -> None:
        """Makes the next ``times`` calls of ``op`` (all, if None) fail with ``errno``.
        With ``partial``, a failing ``write_all`` first writes half its data."""
        assert op in OPS, op
        self._faults[op] = _Fault(errno, times, partial)

    def heal(self, op: str | None = None) -> None:
        if op is None:
            self._faults.clear()
        else:
            self._faults.pop(op, None)

    def crash_at(self, op: str, call: int) -> None:
        """Raises ``SimulatedCrash`` instead of performing the ``call``-th (1-based, counted
        from now) call of ``op``."""
        assert op in OPS, op
        self._crash_at[op] = self.calls[op] + call

    def _enter(self, op: str) -> _Fault | None:
        self.calls[op] += 1
        if self._crash_at.get(op) == self.calls[op]:
            del self._crash_at[op]
            raise SimulatedCrash(f"{op} #{self.calls[op]}")
        fault = self._faults.get(op)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[op]
        return fault

    def _raise(self, op: str, fault: _Fault) -> None:
        err = OSError(fault.errno, os.strerror(fault.errno))
        raise errors.from_os_error(err, f"{op} in {self.path} (injected)")

    def create_file(self, composite_id: int) -> int:
        if fault := self._enter("create_file"):
            self._raise("create_file", fault)
        return super().create_file(composite_id)

    def write_all(self, fd: int, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        if fault := self._enter("write_all"):
            data = b"".join(pieces)
            if fault.partial and len(data) > 1:
                super().write_all(fd, [data[: len(data) // 2]])
            self._raise("write_all", fault)
        super().write_all(fd, pieces)

    def truncate(self, fd: int, length: int) -> None:
        if fault := self._enter("truncate"):
            self._raise("truncate", fault)
        super().truncate(fd, length)

    def close_file(self, fd: int) -> None:
        if fault := self._enter("close_file"):
            os.close(fd)  # close(2) releases the descriptor even when it reports an error
            self._raise("close_file", fault)
        super().close_file(fd)

    def sync_file(self, composite_id: int) -> None:
        if fault := self._enter("sync_file"):
            self._raise("sync_file", fault)
        super().sync_file(composite_id)

    def sync(self) -> None:
        if fault := self._enter("sync"):
            self._raise("sync", fault)
        super().sync()

    def unlink(self, composite_id: int) -> bool:
        if fault := self._enter("unlink"):
            self._raise("unlink", fault)
        return super().unlink(composite_id)

    def open_for_reading(self, composite_id: int) -> SampleFile:
        if fault := self._enter("open_for_reading"):
            self._raise("open_for_reading", fault)
        return _FaultyFile(self, super().open_for_reading(composite_id))


class _FaultyFile:
    """A sample file its ``FaultyDir`` opened: each ``pread`` is the dir's ``read`` op."""

    def __init__(self, sdir: FaultyDir, inner: SampleFile) -> None:
        self._dir = sdir
        self._inner = inner

    def pread(self, offset: int, length: int) -> bytes:
        if fault := self._dir._enter("read"):
            self._dir._raise("read", fault)
        return self._inner.pread(offset, length)

    def close(self) -> None:
        self._inner.close()
