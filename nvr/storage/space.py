"""A sample-file directory's disk against the budgets of the streams stored there.

What belongs here: the filesystem's size and free space as ``statvfs`` reports them
(``DiskSpace``), the sum of the byte budgets (``retain_bytes``) of a directory's streams,
and the warning when that sum is more than the filesystem holds: such budgets never make
retention delete anything before the disk is full. The check is advice, never a refusal
(the disk may grow, other streams may move); ``nvr config camera add|edit``, ``/api/``
(``nvrSampleFileDirs``) and the status page show it. Measuring (a blocking ``statvfs``) is
the caller's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nvr.base.units import format_size
from nvr.db.database import Database


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """A filesystem's size and the space free for nvr (``f_bavail``), in bytes."""

    total_bytes: int
    free_bytes: int

    @classmethod
    def of(cls, st: os.statvfs_result) -> DiskSpace:
        return cls(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def budget_bytes(db: Database, dir_id: int) -> int:
    """The sum of the ``retain_bytes`` of the streams stored in directory ``dir_id``."""
    return sum(
        s.config.retain_bytes for s in db.streams.values() if s.sample_file_dir_id == dir_id
    )


def budget_warning(budget: int, space: DiskSpace | None) -> str | None:
    """Why ``budget`` cannot be kept on that filesystem, or None (also when unmeasured)."""
    if space is None or budget <= space.total_bytes:
        return None
    return (
        f"the streams' budgets ({format_size(budget)}) are more than the disk holds "
        f"({format_size(space.total_bytes)}): the disk will fill up before retention "
        f"deletes anything"
    )
