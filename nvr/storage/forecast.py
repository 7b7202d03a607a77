"""Storage forecast: how long budgets and disks hold at the recent bitrate
(docs/design.md, "Recording, syncing and retention").

What belongs here: per stream, the average bitrate over the last day (bytes of the
recordings that started in it, committed and pending, over their wall duration: the
rate *while recording*, so a camera that was down half the day is not taken for a
quiet one), the days its budget holds at that rate (``retain_bytes`` over a day's bytes,
capped by ``retain_days``), the days it holds now (from its oldest recording); per
sample-file directory, the same summed over its streams, and when the free-space floor
would start deleting (``floor_eta``): each stream grows at its rate until it reaches
its budget (then retention deletes as much as it records), or forever when its
protected video is over budget; free space falls by what the growing streams add.
``floor_eta`` is pure; the rest reads the database's summaries and one indexed sum per
stream. Not here: HTTP shapes (``nvr.web.api``), measuring free space (the syncer).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from nvr.base.time90k import UNITS_PER_SEC, Duration, Time
from nvr.db import raw_evidence
from nvr.db.database import Database

DAY: Duration = 86_400 * UNITS_PER_SEC
DAY_SEC = 86_400


@dataclass(frozen=True, slots=True)
class StreamForecast:
    #: the last day's average while recording (None: nothing recorded in the last day)
    bytes_per_sec: float | None
    #: recorded wall time the average is over
    sampled_90k: Duration
    retain_bytes: int
    retain_days: int | None
    #: committed + pending − planned bytes
    stored_bytes: int
    #: how many days ``retain_bytes`` (and ``retain_days``) hold at the average
    budget_days: float | None
    #: days from the oldest recording to now (None: no recordings)
    held_days: float | None
    #: bytes the stream will still grow by before retention keeps it level (inf: no
    #: limit, its protected video is over budget)
    room_bytes: float


@dataclass(frozen=True, slots=True)
class DirForecast:
    bytes_per_sec: float
    budget_bytes: int
    stored_bytes: int
    budget_days: float | None
    held_days: float | None
    free_bytes: int | None
    min_free: int
    #: seconds until the free-space floor starts deleting (0: it is already; None: never
    #: at these rates, or free space not measured)
    floor_in_sec: float | None


class DaySums:
    """The last day's committed (bytes, wall duration) per stream, each summed at most
    once per ``ttl`` of wall time: ``/api/`` is polled, and each sum reads a day of the
    stream's index entries (~1,440). A recording or two of staleness changes no
    forecast, but an empty sum is not kept once the stream commits a recording: a stream
    that has just started would otherwise say "no recording in the last day" for a
    minute."""

    def __init__(self, ttl: Duration = 60 * UNITS_PER_SEC) -> None:
        self._ttl = ttl
        #: stream id -> (summed at, bytes, wall duration, the stream's committed count)
        self._sums: dict[int, tuple[Time, int, int, int]] = {}

    def get(self, db: Database, stream_id: int, now: Time) -> tuple[int, int]:
        hit = self._sums.get(stream_id)
        committed = db.streams[stream_id].cum_recordings
        if (hit is not None and 0 <= now - hit[0] < self._ttl
                and (hit[1] > 0 or hit[3] == committed)):
            return hit[1], hit[2]
        with db._read("summing the last day's bytes") as conn:
            nbytes, wall = raw_evidence.recording_bytes_since(conn, stream_id, now - DAY)
        if len(self._sums) > 4 * len(db.streams) + 16:  # streams come and go: bounded
            self._sums.clear()
        self._sums[stream_id] = (now, nbytes, wall, committed)
        return nbytes, wall


def stream_forecast(
    db: Database, stream_id: int, now: Time, sums: DaySums | None = None
) -> StreamForecast:
    s = db.streams[stream_id]
    since = now - DAY
    nbytes, wall = (sums or DaySums()).get(db, stream_id, now)
    for p in s.pending:
        if p.start_time_90k >= since:
            nbytes += p.sample_file_bytes
            wall += p.wall_duration_90k
    rate = nbytes * UNITS_PER_SEC / wall if wall > 0 and nbytes > 0 else None
    cfg = s.config
    stored = s.bytes_after_planned_deletions
    budget_days: float | None = None
    cap: float = cfg.retain_bytes
    if rate is not None:
        budget_days = cfg.retain_bytes / (rate * DAY_SEC)
        if cfg.retain_days is not None:
            budget_days = min(budget_days, cfg.retain_days)
            cap = min(cap, rate * cfg.retain_days * DAY_SEC)
    if s.retention is not None and s.retention.over_budget:
        cap = math.inf
    oldest = s.committed.range_start
    if s.pending:
        first = s.pending[0].start_time_90k
        oldest = first if oldest is None else min(oldest, first)
    held = None if oldest is None else max(0, now - oldest) / DAY
    return StreamForecast(
        rate, wall, cfg.retain_bytes, cfg.retain_days, stored, budget_days, held,
        max(0.0, cap - stored),
    )


def dir_forecast(
    db: Database, dir_id: int, now: Time, *, free_bytes: int | None, min_free: int,
    sums: DaySums | None = None,
) -> DirForecast:
    streams = [stream_forecast(db, s.id, now, sums) for s in db.streams_in_dir(dir_id)]
    rate = sum(f.bytes_per_sec or 0.0 for f in streams)
    budget = sum(f.retain_bytes for f in streams)
    helds = [f.held_days for f in streams if f.held_days is not None]
    eta = None
    if free_bytes is not None:
        eta = floor_eta(
            free_bytes, min_free, [(f.bytes_per_sec or 0.0, f.room_bytes) for f in streams]
        )
    return DirForecast(
        rate, budget, sum(f.stored_bytes for f in streams),
        budget / (rate * DAY_SEC) if rate > 0 else None,
        max(helds, default=None), free_bytes, min_free, eta,
    )


def floor_eta(
    free_bytes: int, min_free: int, growth: Iterable[tuple[float, float]]
) -> float | None:
    """Seconds until free space falls to ``min_free`` when each stream of ``growth``
    (bytes per second, bytes of room left) adds its rate until its room is used up.
    0 when already at or below the floor (or a floor of 0 with a full disk); None when
    the streams stop growing first."""
    need = free_bytes - min_free
    if need <= 0:
        return 0.0
    events = sorted(
        (room / rate, rate) for rate, room in growth if rate > 0 and room > 0
    )
    active = sum(rate for _, rate in events)
    t = used = 0.0
    for until, rate in events:
        if used + active * (until - t) >= need:
            return t + (need - used) / active
        used += active * (until - t)
        t = until
        active -= rate
    return None
