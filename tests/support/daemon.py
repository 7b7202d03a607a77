"""Helpers for tests that run the real daemon: a database with cameras, what it committed
(read straight from SQLite once the daemon is stopped), and an independent check of every
recording against its sample file with PyAV's H.264 decoder."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import trio
import trio_util

from nvr import daemon
from nvr.base.clock import RealClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.codec import h264, nal
from nvr.config import Config
from nvr.db.database import Database
from nvr.db.recording import decode_video_index
from nvr.db.types import FLAG_TRAILING_ZERO, CameraConfig, StreamConfig
from nvr.storage.dir import SampleFileDir, file_name


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One camera with a main stream at ``url`` (and a sub stream at ``sub_url``)."""

    url: str
    username: str | None = None
    password: str | None = None
    sub_url: str | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """What ``create_db`` made: the database and sample directory, and the main stream id
    of each camera by name."""

    db_dir: Path
    sample_dir: Path
    stream_ids: Mapping[str, int]

    def config(
        self,
        *,
        rotate_interval_sec: int = 2,
        read_timeout_sec: float = 10.0,
        connect_timeout_sec: float = 20.0,
    ) -> Config:
        """A daemon configuration for this database, without HTTP binds."""
        return Config(
            db_dir=self.db_dir,
            binds=(),
            rotate_interval_sec=rotate_interval_sec,
            read_timeout_sec=read_timeout_sec,
            connect_timeout_sec=connect_timeout_sec,
        )

    def sample_files(self) -> set[int]:
        """Composite ids of the recording files in the sample directory."""
        return {int(p.name, 16) for p in self.sample_dir.iterdir() if p.name != "meta"}


def create_db(
    root: Path,
    cameras: Mapping[str, CameraSpec],
    *,
    flush_if_sec: int = 0,
    retain_bytes: int = 1 << 30,
) -> Layout:
    """Creates a database under ``root/db`` with one sample directory ``root/sample`` and
    the given cameras (each with a main stream, and a sub stream if it has a ``sub_url``,
    recorded into it); closes it again."""
    db_dir, sample_dir = root / "db", root / "sample"
    clocks = RealClocks()
    Database.create(db_dir, clocks.realtime())
    stream_ids: dict[str, int] = {}
    with Database.open(db_dir, tz=dt.UTC, now=clocks.realtime) as db:
        dir_uuid = uuid.uuid4()
        SampleFileDir.create(sample_dir, db.uuid, dir_uuid)
        dir_id = db.add_sample_file_dir(str(sample_dir), dir_uuid).id
        for name, spec in cameras.items():
            urls = {"main": spec.url, **({"sub": spec.sub_url} if spec.sub_url else {})}
            cam = db.add_camera(
                name,
                config=CameraConfig(username=spec.username, password=spec.password),
                streams={
                    kind: (
                        dir_id,
                        StreamConfig(
                            url=url, retain_bytes=retain_bytes, flush_if_sec=flush_if_sec
                        ),
                    )
                    for kind, url in urls.items()
                },
            )
            stream_ids[name] = cam.streams["main"]
    return Layout(db_dir, sample_dir, stream_ids)


@dataclass(frozen=True, slots=True)
class Rec:
    """One committed ``recording`` row with its index and sample entry."""

    composite_id: int
    stream_id: int
    recording_id: int
    open_id: int
    run_offset: int
    flags: int
    start_time_90k: int
    wall_duration_90k: int
    media_duration_90k: int
    prev_media_duration_90k: int
    prev_runs: int
    video_samples: int
    video_sync_samples: int
    sample_file_bytes: int
    end_reason: str | None
    video_index: bytes
    avcc: bytes  # the sample entry's whole avcC box

    @property
    def end_time_90k(self) -> int:
        return self.start_time_90k + self.wall_duration_90k

    @property
    def trailing_zero(self) -> bool:
        return bool(self.flags & FLAG_TRAILING_ZERO)


def committed_recordings(db_dir: Path) -> list[Rec]:
    """Every committed recording, by composite id (stream, then recording id). Reads the
    database file directly: only while no daemon has it open."""
    conn = sqlite3.connect(f"file:{db_dir / 'db'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            """select r.composite_id, r.stream_id, r.open_id, r.run_offset, r.flags,
                      r.start_time_90k, r.wall_duration_90k,
                      r.wall_duration_90k + r.media_duration_delta_90k,
                      r.prev_media_duration_90k, r.prev_runs, r.video_samples,
                      r.video_sync_samples, r.sample_file_bytes, r.end_reason,
                      p.video_index, e.data
               from recording r
               join recording_playback p using (composite_id)
               join video_sample_entry e on e.id = r.video_sample_entry_id
               order by r.composite_id"""
        ).fetchall()
    finally:
        conn.close()
    return [
        Rec(
            composite_id=cid,
            stream_id=sid,
            recording_id=cid & 0xFFFFFFFF,
            open_id=open_id,
            run_offset=run_offset,
            flags=flags,
            start_time_90k=start,
            wall_duration_90k=wall,
            media_duration_90k=media,
            prev_media_duration_90k=prev_media,
            prev_runs=prev_runs,
            video_samples=samples,
            video_sync_samples=sync,
            sample_file_bytes=nbytes,
            end_reason=end_reason,
            video_index=bytes(index),
            avcc=bytes(avcc),
        )
        for (
            cid,
            sid,
            open_id,
            run_offset,
            flags,
            start,
            wall,
            media,
            prev_media,
            prev_runs,
            samples,
            sync,
            nbytes,
            end_reason,
            index,
            avcc,
        ) in rows
    ]


def by_stream(recs: list[Rec]) -> dict[int, list[Rec]]:
    out: dict[int, list[Rec]] = {}
    for r in recs:
        out.setdefault(r.stream_id, []).append(r)
    return out


START_CODE = b"\x00\x00\x00\x01"


def annex_b(avcc_box: bytes, sample_file: bytes) -> bytes:
    """A recording as an H.264 Annex B stream: the avcC's SPS/PPS, then every NAL unit of
    the sample file with its 4-byte length replaced by a start code."""
    sps_list, pps_list, length_size = h264.parse_avcc_record(avcc_box[8:])
    assert length_size == 4
    nals = [*sps_list, *pps_list, *nal.split_length_prefixed(sample_file)]
    return b"".join(START_CODE + nal for nal in nals)


def decoded_frame_count(avcc_box: bytes, sample_file: bytes) -> int:
    """How many pictures FFmpeg's H.264 decoder gets out of the recording (errors raise)."""
    codec = av.CodecContext.create("h264", "r")
    frames = 0
    for packet in [*codec.parse(annex_b(avcc_box, sample_file)), *codec.parse(None)]:
        frames += len(codec.decode(packet))
    frames += len(codec.decode(None))
    return frames


def check_recording(rec: Rec, sample_dir: Path) -> None:
    """Asserts ``rec`` is sound on its own: its index agrees with the row, starts with a
    key frame, and its file holds exactly ``video_samples`` decodable pictures."""
    index = decode_video_index(rec.video_index)
    frames = index.frames()
    assert frames[0].is_key, f"{rec.composite_id:016x} does not start with a key frame"
    assert index.totals.frames == rec.video_samples
    assert index.totals.key_frames == rec.video_sync_samples
    assert index.totals.bytes == rec.sample_file_bytes
    assert index.totals.media_duration_90k == rec.media_duration_90k
    assert (frames[-1].duration_90k == 0) == rec.trailing_zero
    data = (sample_dir / file_name(rec.composite_id)).read_bytes()
    assert len(data) == rec.sample_file_bytes
    assert decoded_frame_count(rec.avcc, data) == rec.video_samples


def check_stream_recordings(recs: list[Rec]) -> None:
    """Asserts one stream's recordings (oldest first) chain up: ids consecutive, media
    durations add up, runs counted, and each recording of a run starts exactly where the
    previous one ended. A recording that ends its run carries the trailing-zero flag and
    an end reason, and is followed by one with ``run_offset`` 0."""
    for prev, cur in itertools.pairwise(recs):
        assert cur.recording_id == prev.recording_id + 1
        assert cur.prev_media_duration_90k == prev.prev_media_duration_90k + prev.media_duration_90k
        if cur.run_offset == 0:
            assert cur.prev_runs == prev.prev_runs + 1
            assert prev.trailing_zero and prev.end_reason is not None
        else:
            assert cur.run_offset == prev.run_offset + 1
            assert cur.prev_runs == prev.prev_runs
            assert cur.start_time_90k == prev.end_time_90k
            assert not prev.trailing_zero and prev.end_reason is None


def runs_of(recs: list[Rec]) -> list[list[Rec]]:
    """One stream's recordings grouped into runs."""
    runs: list[list[Rec]] = []
    for r in recs:
        if r.run_offset == 0 or not runs:
            runs.append([])
        runs[-1].append(r)
    return runs


def now_90k() -> int:
    return RealClocks().realtime()


def seconds(duration_90k: int) -> float:
    return duration_90k / UNITS_PER_SEC


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[daemon.Daemon]:
    """The daemon, in-process; shut down (orderly) when the block ends."""
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(
            lambda task_status: daemon.run(config, handle_signals=False, task_status=task_status)
        )
        try:
            yield d
        finally:
            d.shutdown.set()




async def poll(pred: Callable[[], bool]) -> None:
    """Returns once ``pred()`` holds, checking every 50 ms (bound it with ``fail_after``)."""
    async for _ in trio_util.periodic(0.05):
        if pred():
            return
