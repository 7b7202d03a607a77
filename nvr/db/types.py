"""The database's value types: what callers pass in and get back.

What belongs here: plain data with no I/O: the JSON ``config`` of cameras and streams
(``CameraConfig``, ``StreamConfig``, validated here), the in-memory state the database keeps
(``Camera``, ``Stream``, ``SampleFileDirRow``, pending recordings, planned deletions and
protected ranges)
and what its reads return (``ListedRecording``, ``CheckedRecording``). Not here: anything
that reads SQLite (``raw``, the ``Database`` mixins) and the per-stream totals
(``stream_summary``).

A recording has one field set, ``RecordingFields``: its pending form (``PendingRecording``,
filled by its writer while it grows) and its listed form (``ListedRecording``, what reads
return, committed or not) both extend it, so a listing of a pending recording copies those
fields by name.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from nvr.base import errors
from nvr.base.time90k import UNITS_PER_SEC, Duration, Time
from nvr.db import raw
from nvr.db.frames_summary import FramesSummary
from nvr.db.raw import RecordingRow, split_composite_id
from nvr.db.stream_summary import StreamSummary

#: a recording's wall duration is always below this (the schema checks it too)
MAX_RECORDING_WALL_DURATION: Duration = 5 * 60 * UNITS_PER_SEC
#: ``recording.flags``: the last frame has duration 0 (the run ended uncleanly)
FLAG_TRAILING_ZERO = 1
STREAM_TYPES = ("main", "sub", "ext")
STREAM_MODES = ("record", "live", "off")


# ----------------------------------------------------------------------------- config types


#: the streams motion analysis may decode, and the cells of its grid
MOTION_STREAMS = ("sub", "main")
MOTION_CELLS = 16 * 16


@dataclass(slots=True)
class CameraConfig:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    onvif_url: str | None = None
    #: the name of the signal nvr's motion detector writes (``Database.motion_signal``);
    #: None: "<camera> motion"
    motion_signal: str | None = None
    #: which stream motion analysis decodes: "sub", "main" or None (off)
    motion: str | None = None
    #: 1 (least) .. 10 (most sensitive); None: the default (5)
    motion_sensitivity: int | None = None
    #: cells of the 16 x 16 grid (row * 16 + col) whose motion is ignored
    motion_mask: list[int] | None = None

    def validate(self) -> None:
        if self.motion not in (None, *MOTION_STREAMS):
            raise errors.InvalidArgument("motion must be sub, main or off")
        if self.motion_sensitivity is not None and not 1 <= self.motion_sensitivity <= 10:
            raise errors.InvalidArgument("motion sensitivity must be within 1..10")
        if self.motion_mask is not None and any(
            not 0 <= c < MOTION_CELLS for c in self.motion_mask
        ):
            raise errors.InvalidArgument(f"motion mask cells must be within 0..{MOTION_CELLS - 1}")

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> CameraConfig:
        d = json.loads(text)
        return cls(
            d.get("username"), d.get("password"), d.get("onvif_url"), d.get("motion_signal"),
            d.get("motion"), d.get("motion_sensitivity"), d.get("motion_mask"),
        )


@dataclass(slots=True)
class StreamConfig:
    url: str = ""
    mode: str = "record"
    retain_bytes: int = 0
    retain_days: int | None = None
    flush_if_sec: int = 60
    rtsp_transport: str = "tcp"

    def validate(self) -> None:
        if self.mode not in STREAM_MODES:
            raise errors.InvalidArgument(f"stream mode must be one of {', '.join(STREAM_MODES)}")
        if self.retain_bytes < 0:
            raise errors.InvalidArgument("retain_bytes must be >= 0")
        if self.retain_days is not None and self.retain_days <= 0:
            raise errors.InvalidArgument("retain_days must be > 0")
        if self.flush_if_sec < 0:
            raise errors.InvalidArgument("flush_if_sec must be >= 0")
        if self.rtsp_transport not in ("tcp", "udp"):
            raise errors.InvalidArgument("rtsp_transport must be tcp or udp")

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> StreamConfig:
        d = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------- recordings


@dataclass(slots=True, eq=False)
class RecordingFields:
    """What a recording's row says about it, in both its pending and its listed form.

    ``media_duration_90k`` is the sum of the frames' durations (the row stores it as a
    delta against the wall duration). ``index_summary`` is the whole index's summary when
    known (see the subclasses); it takes no part in comparisons."""

    composite_id: int
    open_id: int
    start_time_90k: Time
    wall_duration_90k: Duration
    media_duration_90k: Duration
    video_samples: int
    video_sync_samples: int
    video_sample_entry_id: int
    sample_file_bytes: int
    run_offset: int
    flags: int
    prev_media_duration_90k: Duration
    prev_runs: int
    end_reason: str | None = None
    index_summary: FramesSummary | None = field(default=None, compare=False, kw_only=True)

    @property
    def stream_id(self) -> int:
        return self.composite_id >> raw.ID_BITS

    @property
    def recording_id(self) -> int:
        return split_composite_id(self.composite_id)[1]

    @property
    def end_time_90k(self) -> Time:
        return self.start_time_90k + self.wall_duration_90k


_RECORDING_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(RecordingFields))


class PendingState(enum.Enum):
    GROWING = "growing"  # its writer is still adding frames
    DONE = "done"  # the writer closed it; the file holds every byte
    SYNCED = "synced"  # the syncer fsynced file and directory; ready to commit


@dataclass(slots=True, eq=False, kw_only=True)
class PendingRecording(RecordingFields):
    """A recording that is not committed yet. Its writer fills the media fields while
    it grows (and ``index_summary`` once the index is final); the syncer marks it synced;
    ``Database.flush`` commits it. Compared by identity."""

    local_time_since_open_90k: Duration
    video_index: bytes = b""
    local_time_delta_90k: Duration = 0
    wall_time_delta_90k: Duration = 0
    sample_file_sha256: bytes | None = None
    state: PendingState = PendingState.GROWING

    def to_row(self, summary: FramesSummary) -> RecordingRow:
        return RecordingRow(
            composite_id=self.composite_id,
            open_id=self.open_id,
            run_offset=self.run_offset,
            flags=self.flags,
            sample_file_bytes=self.sample_file_bytes,
            start_time_90k=self.start_time_90k,
            prev_media_duration_90k=self.prev_media_duration_90k,
            prev_runs=self.prev_runs,
            wall_duration_90k=self.wall_duration_90k,
            media_duration_delta_90k=self.media_duration_90k - self.wall_duration_90k,
            video_samples=self.video_samples,
            video_sync_samples=self.video_sync_samples,
            video_sample_entry_id=self.video_sample_entry_id,
            end_reason=self.end_reason,
            local_time_delta_90k=self.local_time_delta_90k,
            local_time_since_open_90k=self.local_time_since_open_90k,
            wall_time_delta_90k=self.wall_time_delta_90k,
            sample_file_sha256=self.sample_file_sha256,
            video_index=self.video_index,
            summary=summary,
        )


@dataclass(slots=True)
class ListedRecording(RecordingFields):
    """One recording as listings show it (committed or pending). Treat it as a value:
    it is a snapshot, and nothing changes it.

    ``index_summary`` is set when the listing carries it: listings by id (what ``view.mp4``
    reads) do for committed recordings that have one and for pending ones whose writer has
    finished; listings by time (the covering index) do only for pending ones.

    ``archive_only``: its local sample file is gone and an archive holds it (a row of
    ``archive_only_recording``; its bytes are read from the archive)."""

    growing: bool = False
    committed: bool = True
    archive_only: bool = False

    @classmethod
    def from_row(cls, row: tuple[Any, ...], *, archive_only: bool = False) -> ListedRecording:
        """From a row of ``raw``'s listing columns, which store the media duration as a
        delta against the wall duration, optionally followed by the summary columns."""
        (cid, open_id, start, wall, delta, samples, sync_samples, entry_id, nbytes,
         run_offset, flags, prev_media, prev_runs, end_reason) = row[:raw.LIST_COLUMN_COUNT]
        summary = (raw.summary_from_columns(row[raw.LIST_COLUMN_COUNT:])
                   if len(row) > raw.LIST_COLUMN_COUNT else None)
        return cls(cid, open_id, start, wall, wall + delta, samples, sync_samples, entry_id,
                   nbytes, run_offset, flags, prev_media, prev_runs, end_reason,
                   index_summary=summary, archive_only=archive_only)

    @classmethod
    def from_pending(cls, p: PendingRecording) -> ListedRecording:
        shared = {name: getattr(p, name) for name in _RECORDING_FIELD_NAMES}
        return cls(**shared, growing=p.state is PendingState.GROWING, committed=False)


@dataclass(frozen=True, slots=True)
class CheckedRecording:
    """A committed recording with everything ``nvr check`` verifies: its row (with the
    stored index summary, None where the row has none), its integrity row's SHA-256 and
    its ``video_index`` (None: the row has no ``recording_playback``)."""

    recording: ListedRecording
    sample_file_sha256: bytes | None
    video_index: bytes | None


@dataclass(frozen=True, slots=True)
class PlannedDeletion:
    composite_id: int
    start_time_90k: Time
    wall_duration_90k: Duration
    sample_file_bytes: int


@dataclass(frozen=True, slots=True)
class ProtectedRange:
    """A span of a camera's video that retention keeps (``protected_range`` row)."""

    id: int
    camera_id: int
    start_time_90k: Time
    end_time_90k: Time
    reason: str
    expires_time_90k: Time | None
    created_time_90k: Time
    created_by: str
    removed_time_90k: Time | None = None
    removed_by: str | None = None

    def active(self, now: Time) -> bool:
        """Protects at ``now``: not removed, and not expired (at its expiry time it
        protects no longer)."""
        return self.removed_time_90k is None and (
            self.expires_time_90k is None or now < self.expires_time_90k
        )


@dataclass(frozen=True, slots=True)
class RetentionStatus:
    """A stream's budget split by protection: ``protected_bytes`` (committed and pending
    recordings overlapping an active protected range) count against ``retain_bytes``
    like the rest, but only ``unprotected_bytes`` can be deleted. ``over_budget``:
    protected video alone exceeds ``retain_bytes``, so byte retention deletes nothing
    of the stream (docs/design.md, "Recording, syncing and retention")."""

    protected_bytes: int
    unprotected_bytes: int
    retain_bytes: int

    @property
    def over_budget(self) -> bool:
        return self.protected_bytes > self.retain_bytes


@dataclass(frozen=True, slots=True)
class FlushResult:
    committed: int  # recordings inserted
    deleted: int  # recordings moved to garbage
    garbage_removed: int  # garbage rows forgotten


# ----------------------------------------------------------------------------- state types


@dataclass(slots=True)
class Camera:
    id: int
    uuid: uuidlib.UUID
    short_name: str
    description: str
    config: CameraConfig
    streams: dict[str, int] = field(default_factory=dict)  # type -> stream id


@dataclass(slots=True)
class SampleFileDirRow:
    """A ``sample_file_dir`` row plus the garbage bookkeeping of its syncer."""

    id: int
    path: str
    uuid: uuidlib.UUID
    last_complete_open_id: int | None
    #: composite ids in ``garbage`` whose files still have to be unlinked
    garbage_needs_unlink: set[int] = field(default_factory=set)
    #: composite ids whose files are unlinked (and the dir fsynced): rows go at next flush
    garbage_unlinked: set[int] = field(default_factory=set)
    #: recordings (and their sample file bytes) moved to garbage since the database was
    #: opened: retention's work, for metrics
    deleted_recordings: int = 0
    deleted_bytes: int = 0


@dataclass(slots=True)
class Stream:
    id: int
    camera_id: int
    type: str
    sample_file_dir_id: int | None
    config: StreamConfig
    cum_recordings: int
    cum_media_duration_90k: Duration
    cum_runs: int
    pending: list[PendingRecording] = field(default_factory=list)
    planned_deletions: list[PlannedDeletion] = field(default_factory=list)
    committed: StreamSummary = field(default_factory=StreamSummary)
    #: the per-day totals of its archive-only recordings (``archive_only_day``; only
    #: ``days`` and the counts are kept, not the time range)
    archive_only: StreamSummary = field(default_factory=StreamSummary)
    #: as of the last retention planning (or protection change): for metrics and logs
    retention: RetentionStatus | None = None

    @property
    def next_recording_id(self) -> int:
        return self.cum_recordings + len(self.pending)

    @property
    def planned_through(self) -> int:
        """The composite id of the newest recording planned for deletion, or the one
        before the stream's first: deletions are planned oldest first, so the next one to
        plan is the oldest committed recording after this. Redaction pieces (ids from
        ``raw.PIECE_BASE``, merged in by time) do not count."""
        for d in reversed(self.planned_deletions):
            if split_composite_id(d.composite_id)[1] < raw.PIECE_BASE:
                return d.composite_id
        return raw.composite_id(self.id, 0) - 1

    @property
    def bytes_after_planned_deletions(self) -> int:
        """Committed plus pending bytes, minus what is already planned for deletion:
        the figure retention compares with ``retain_bytes``."""
        return (
            self.committed.sample_file_bytes
            + sum(p.sample_file_bytes for p in self.pending)
            - sum(d.sample_file_bytes for d in self.planned_deletions)
        )
