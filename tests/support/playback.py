"""A library of recordings for the playback tests, and an independent model of what a
``view.mp4`` for an ``s=`` list must hold.

``record_library(root)`` records two streams from the fixture clips with the real
streamer and syncer, replayed on a ``MockClock`` (a fraction of a second of real time),
then closes the database so that a daemon can open it:

- ``small`` (camera ``cam0``, rotation every 10 s): four runs. The 640x360 clip looped
  twice (recordings of 20, 10 and 10 s, the last with a trailing zero); the
  resolution-change clip once (640x360 for 3 s, then 320x240: two sample entries, so a
  new recording in the same run); the 640x360 clip once more, with two forward steps in
  its timestamps (two frames of 3300 ticks; its last recording's media duration exceeds
  its wall duration, so ``s=`` times are scaled); the resolution-change clip looped twice
  (640x360, 320x240, 640x360, 320x240 by turns every 3 s, so the sample entry changes
  three times in the run; a rotation splits the third stretch: five recordings).
- ``big`` (camera ``cam1``, rotation every 60 s): one run of the 640x360 clip looped for
  250 s, over 8 MiB.

``expected_view(library, stream, specs)`` resolves ``s=`` values the way Moonfire NVR's
API defines them (ids of the stream, relative times in 90k wall time from the start of
``START_ID``, scaled to media time with starts rounded down and ends up, the frames from
the key frame at or before the start and starting before the end, an edit list so
playback starts and ends exactly where asked, or for a range inside one frame starts
where that frame does) from the
recordings' indexes, frame by frame. Every decoded picture of the fixtures shows its frame
number (``fixtures.make_fixtures.read_frame_number``), so tests can check *which* frame
each output frame is.
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.errors import Unavailable
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import Config
from nvr.db.recording import FrameEntry, iter_video_index
from nvr.db.types import FLAG_TRAILING_ZERO
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from tests.support.determinism import T0
from tests.support.http import daemon_in_thread, view_config
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC

CLIP = str(FIXTURES / "h264-640x360.mp4")  # 600 frames, 20 s
RES_CHANGE = str(FIXTURES / "h264-res-change.ts")  # 180 frames, 320x240 from frame 90
CLIP_FRAMES = {CLIP: 600, RES_CHANGE: 180}
#: the clip each run of each stream plays (runs restart the clip at frame 0)
RUN_CLIPS = {"small": [CLIP, RES_CHANGE, CLIP, RES_CHANGE], "big": [CLIP]}
BIG_SECONDS = 250


@dataclass(frozen=True)
class LibRec:
    """One committed recording, with its index decoded frame by frame."""

    recording_id: int
    open_id: int
    run_offset: int
    prev_runs: int
    start_time_90k: int
    wall_duration_90k: int
    media_duration_90k: int
    prev_media_duration_90k: int
    flags: int
    entry_id: int
    width: int
    frames: tuple[FrameEntry, ...]
    first_frame_number: int  # the clip's frame number of its first frame
    clip_length: int  # frames in the clip (a looped clip restarts at frame 0)

    def frame_number(self, i: int) -> int:
        """The clip's frame number of the recording's frame ``i``."""
        return (self.first_frame_number + i) % self.clip_length

    @property
    def trailing_zero(self) -> bool:
        return bool(self.flags & FLAG_TRAILING_ZERO)

    @property
    def end_time_90k(self) -> int:
        return self.start_time_90k + self.wall_duration_90k


@dataclass(frozen=True)
class Library:
    root: Path
    camera_uuids: dict[str, str]  # "small"/"big" -> the camera's uuid
    recordings: dict[str, list[LibRec]]  # by stream name, by id

    @property
    def db_dir(self) -> Path:
        return self.root / "db"

    def config(self) -> Config:
        return Config(db_dir=self.db_dir, binds=(), time_zone="UTC")

    def view_path(self, stream: str, kind: str = "mp4") -> str:
        return f"/api/cameras/{self.camera_uuids[stream]}/main/view.{kind}"


def record_library(root: Path) -> Library:
    gone = Session(open_error=Unavailable("camera gone"))
    clip, res_change = load_packets(CLIP), load_packets(RES_CHANGE)
    scripts = {
        # (each session after a recorded one is retried 1 s after its end; the runs start
        # where the shape described in test_the_library_is_as_described needs them, 1,
        # 2 and 4 s after the previous run's end, by connecting that much more slowly)
        "rtsp://cam0/main": [
            Session(clip, loops=2),
            Session(res_change, loops=1),
            # two forward steps of the camera's timestamps: frames of 3300 ticks, and
            # media time that runs ahead of the (local) wall time in the last recording
            Session(clip, loops=1, pts_shifts={150: 300, 450: 300}, open_delay=1 * SEC),
            Session(res_change, loops=2, open_delay=3 * SEC),
            gone,
        ],
        "rtsp://cam1/main": [Session(clip, loops=None, end_after=BIG_SECONDS * 30), gone],
    }
    rotation = {0: 10 * SEC, 1: 60 * SEC}

    async def main() -> None:
        with inline_blocking():
            create_env(root, streams=2, flush_if_sec=0)
            clocks = SimulatedClocks(T0)
            env = open_env(root, now=clocks.realtime, monotonic=clocks.monotonic)
            try:
                opener = ReplayOpener(clocks, scripts)
                syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
                async with trio.open_nursery() as outer:
                    await outer.start(syncer.run)
                    with trio.move_on_after(BIG_SECONDS + 10):
                        async with trio.open_nursery() as nursery:
                            for i, sid in enumerate(env.stream_ids):
                                streamer = Streamer(
                                    db=env.db, stream_id=sid, sdir=env.sdir, sink=syncer,
                                    opener=opener, clocks=clocks,
                                    options=StreamerOptions(
                                        jitter=0.0, rotate_interval=rotation[i],
                                        initial_backoff=SEC,
                                    ),
                                    open_options=OpenOptions(read_timeout=10 * SEC),
                                )
                                nursery.start_soon(streamer.run)
                    outer.cancel_scope.cancel()
            finally:
                env.close()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return load_library(root)


def load_library(root: Path) -> Library:
    conn = sqlite3.connect(f"file:{root / 'db' / 'db'}?mode=ro", uri=True)
    try:
        cams = dict(conn.execute("select short_name, uuid from camera"))
        rows = conn.execute(
            """select c.short_name, r.composite_id, r.open_id, r.run_offset, r.prev_runs,
                      r.start_time_90k, r.wall_duration_90k,
                      r.wall_duration_90k + r.media_duration_delta_90k,
                      r.prev_media_duration_90k, r.flags, r.video_sample_entry_id, e.width,
                      p.video_index
               from recording r
               join stream s on s.id = r.stream_id
               join camera c on c.id = s.camera_id
               join recording_playback p using (composite_id)
               join video_sample_entry e on e.id = r.video_sample_entry_id
               order by r.composite_id"""
        ).fetchall()
    finally:
        conn.close()
    names = {"cam0": "small", "cam1": "big"}
    recordings: dict[str, list[LibRec]] = {"small": [], "big": []}
    run, position = -1, 0
    for cam, cid, open_id, run_offset, prev_runs, start, wall, media, prev_media, flags, \
            entry_id, width, index in rows:
        stream = names[cam]
        if run_offset == 0:
            run, position = prev_runs, 0
        frames = tuple(iter_video_index(index))
        clip_frames = CLIP_FRAMES[RUN_CLIPS[stream][run]]
        recordings[stream].append(LibRec(
            recording_id=cid & 0xFFFFFFFF, open_id=open_id, run_offset=run_offset,
            prev_runs=prev_runs, start_time_90k=start, wall_duration_90k=wall,
            media_duration_90k=media, prev_media_duration_90k=prev_media, flags=flags,
            entry_id=entry_id, width=width, frames=frames,
            first_frame_number=position % clip_frames, clip_length=clip_frames,
        ))
        position += len(frames)
    return Library(
        root, {names[c]: str(uuid.UUID(bytes=bytes(u))) for c, u in cams.items()}, recordings
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """The library, recorded once per test module."""
    return record_library(tmp_path_factory.mktemp("playback"))


@pytest.fixture(scope="module")
def library_url(library: Library) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of the real daemon serving ``library`` (read-only, in a
    thread; ``viewVideo`` granted without a login)."""
    with daemon_in_thread(view_config(library.config()), read_only=True) as d:
        yield d.http_addresses[0]


# --- the model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SSpec:
    """One ``s=`` value: ``START[-END][@OPEN][.[REL_START]-[REL_END]]``."""

    start_id: int
    end_id: int
    open_id: int | None = None
    rel_start: int | None = None
    rel_end: int | None = None
    #: write the range part even when both ends are omitted ("0-2.-")
    empty_range: bool = False

    def __str__(self) -> str:
        text = str(self.start_id)
        if self.end_id != self.start_id:
            text += f"-{self.end_id}"
        if self.open_id is not None:
            text += f"@{self.open_id}"
        if self.rel_start is not None or self.rel_end is not None or self.empty_range:
            a = "" if self.rel_start is None else str(self.rel_start)
            b = "" if self.rel_end is None else str(self.rel_end)
            text += f".{a}-{b}"
        return text


@dataclass(frozen=True)
class OutFrame:
    track_time: int  # decode (= presentation) time in the track, before the edit list
    duration: int
    number: int  # the fixture's frame number
    width: int


@dataclass(frozen=True)
class Expected:
    """What the file must hold; ``error`` (a status) instead when it must be refused."""

    frames: list[OutFrame]
    edits: list[tuple[int, int]]  # (media_time, duration); [] when it would be trivial
    duration_90k: int  # the movie's: the sum of the edits, or the track's
    error: int | None = None
    #: the first segment's recording, requested start and the start of its first frame
    #: (the key frame at or before it), both relative to the recording
    first: tuple[LibRec, int, int] | None = None


def _wall_to_media(rec: LibRec, wall_offset: int, *, end: bool = False) -> int:
    """Scaled by media/wall duration: a start rounds down, an ``end`` up (the media range
    holds all of the wall range)."""
    if wall_offset <= 0:
        return 0
    if wall_offset >= rec.wall_duration_90k:
        return rec.media_duration_90k
    scaled = Fraction(wall_offset * rec.media_duration_90k, rec.wall_duration_90k)
    return math.ceil(scaled) if end else math.floor(scaled)


def _pieces(recs: list[LibRec], spec: SSpec) -> list[tuple[LibRec, int, int]] | int:
    """The (recording, media start, media end) pieces a spec names, or an error status."""
    by_id = {r.recording_id: r for r in recs}
    span = [by_id.get(i) for i in range(spec.start_id, spec.end_id + 1)]
    if any(r is None for r in span):
        return 404
    if spec.rel_start is not None and spec.rel_end is not None and spec.rel_end <= spec.rel_start:
        return 400
    want_start = spec.rel_start or 0
    out = []
    pos = 0
    for r in span:
        assert r is not None
        if spec.open_id is not None and r.open_id != spec.open_id:
            return 404
        lo, hi = pos, pos + r.wall_duration_90k
        pos = hi
        if hi <= want_start:
            continue
        if spec.rel_end is not None and lo >= spec.rel_end:
            break
        start = _wall_to_media(r, want_start - lo)
        end = (
            r.media_duration_90k
            if spec.rel_end is None or spec.rel_end >= hi
            else _wall_to_media(r, spec.rel_end - lo, end=True)
        )
        if end > start:
            out.append((r, start, end))
    return out or 400


def expected_view(recs: list[LibRec], specs: Sequence[SSpec]) -> Expected:
    pieces: list[tuple[LibRec, int, int]] = []
    for spec in specs:
        p = _pieces(recs, spec)
        if isinstance(p, int):
            return Expected([], [], 0, error=p)
        pieces += p
    frames: list[OutFrame] = []
    edits: list[tuple[int, int]] = []
    for n, (rec, start, end) in enumerate(pieces):
        total = rec.media_duration_90k
        begin = max(i for i, f in enumerate(rec.frames) if f.is_key and f.start_90k <= start)
        chosen = [
            (i, f) for i, f in enumerate(rec.frames)
            if i >= begin and (f.start_90k < end or end >= total)
        ]
        if chosen[-1][1].duration_90k == 0 and n < len(pieces) - 1:
            return Expected([], [], 0, error=400)  # nothing may follow a trailing zero
        track = sum(f.duration for f in frames)
        lead = rec.frames[begin].start_90k
        frames += [
            OutFrame(track + f.start_90k - lead, f.duration_90k, rec.frame_number(i), rec.width)
            for i, f in chosen
        ]
        media_time = track + start - lead
        if edits and sum(edits[-1]) == media_time:
            edits[-1] = (edits[-1][0], edits[-1][1] + end - start)
        else:
            if not any(start <= f.start_90k < end for f in rec.frames):
                # inside one frame: the edit starts where that frame does (players present
                # only frames that start inside an edit)
                media_time = track + max(f.start_90k for f in rec.frames
                                         if f.start_90k <= start) - lead
            edits.append((media_time, end - start))
    total = sum(f.duration for f in frames)
    rec, start, _ = pieces[0]
    first = (rec, start, max(f.start_90k for f in rec.frames if f.is_key and f.start_90k <= start))
    if edits == [(0, total)]:
        return Expected(frames, [], total, first=first)
    return Expected(frames, edits, sum(d for _, d in edits), first=first)
