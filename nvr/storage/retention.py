"""Deletion planning for the free-space floor of a sample-file directory (docs/design.md,
"Recording, syncing and retention").

What belongs here: deciding *which* recordings to delete so that a directory's filesystem
keeps at least its configured free space. ``pick_oldest`` is pure (no I/O, no database):
it merges the streams' oldest-first candidates by start time and takes the oldest until
enough bytes are freed. ``plan_free_space`` feeds it from the database and records the
choice as planned deletions, which the next ``Database.flush`` commits like any other
retention deletion (rows to ``garbage``, then the syncer unlinks).

Per-stream retention (``retain_bytes``, ``retain_days``) stays in
``Database.plan_retention``: it needs only the stream's own rows.

Free space itself is measured by the caller (``SampleFileDir.statvfs`` through the
syncer's injectable ``free_bytes``) so tests on a mock clock can drive it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from nvr.db.database import Database
from nvr.db.stream_summary import fs_bytes
from nvr.db.types import PlannedDeletion


def pick_oldest(
    candidates: Iterable[Iterable[PlannedDeletion]], need_bytes: int
) -> list[PlannedDeletion]:
    """The oldest recordings across all ``candidates`` (one oldest-first iterable per
    stream) whose disk usage (whole 4 KiB blocks) adds up to at least ``need_bytes``, oldest
    first; fewer if there are not enough. Each stream's choice is a prefix of its list."""
    if need_bytes <= 0:
        return []
    merged = heapq.merge(*candidates, key=lambda d: (d.start_time_90k, d.composite_id))
    out: list[PlannedDeletion] = []
    freed = 0
    for d in merged:
        out.append(d)
        freed += fs_bytes(d.sample_file_bytes)
        if freed >= need_bytes:
            break
    return out


def free_space_deficit(db: Database, dir_id: int, free_bytes: int, min_free: int) -> int:
    """Bytes still to free so that ``free_bytes`` reaches ``min_free``, counting what is
    already planned for deletion in this directory as freed (it will be, without further
    planning). Measure after unlinking garbage: files in garbage are not counted."""
    if min_free <= 0:
        return 0
    planned = sum(
        fs_bytes(d.sample_file_bytes)
        for s in db.streams_in_dir(dir_id)
        for d in s.planned_deletions
    )
    return min_free - free_bytes - planned


def plan_free_space(db: Database, dir_id: int, need_bytes: int) -> list[PlannedDeletion]:
    """Plans deletion of the directory's oldest committed recordings (of any of its
    streams) to free at least ``need_bytes``. Returns what was planned (may free less
    when there is not enough video left)."""
    if need_bytes <= 0:
        return []
    streams = db.streams_in_dir(dir_id)
    # Each candidate list is lazy: planning 10 GB of 1 MB recordings reads ~10k rows.
    iters: list[Iterator[PlannedDeletion]] = [db.iter_unplanned_oldest(s.id) for s in streams]
    chosen = pick_oldest(iters, need_bytes)
    for s in streams:
        mine = [d for d in chosen if d.composite_id >> 32 == s.id]
        if mine:
            db.add_planned_deletions(s.id, mine)
    return chosen
