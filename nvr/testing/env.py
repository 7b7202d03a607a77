"""A ready-made recording environment for tests: a database with a sample-file directory
opened through the interlock and N cameras with a main stream each."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nvr.base.time90k import UNITS_PER_SEC, Duration, Time
from nvr.db.database import Database
from nvr.db.recording import VideoSampleEntry
from nvr.db.types import CameraConfig, StreamConfig
from nvr.storage.dir import SampleFileDir, open_for_database, remove_garbage_and_uncommitted
from nvr.testing.faults import FaultyDir

#: a real 640x360 High-profile avcC box (SPS/PPS from libx264), good for any test entry
TEST_AVCC = bytes.fromhex(
    "00000036617663430164001effe100196764001eacd940a02ff9610000030001000003003c0f162d96"
    "01000668ebe3cb22c0fdf8f800"
)
TEST_SAMPLE_ENTRY = VideoSampleEntry(640, 360, "avc1.64001e", TEST_AVCC)


@dataclass
class RecordingEnv:
    db_dir: Path
    sample_dir: Path
    db: Database
    sdir: FaultyDir
    dir_id: int
    stream_ids: list[int]
    entry_id: int

    def close(self) -> None:
        self.sdir.close()
        self.db.close()


def create_env(
    root: Path,
    *,
    streams: int = 1,
    retain_bytes: int = 1 << 40,
    flush_if_sec: int = 60,
    now: Time = 1_700_000_000 * UNITS_PER_SEC,
) -> None:
    """Creates (but does not open) a database and directory under ``root``."""
    db_dir, sample_dir = root / "db", root / "sample"
    Database.create(db_dir, now)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: now) as db:
        dir_uuid = uuid.uuid4()
        SampleFileDir.create(sample_dir, db.uuid, dir_uuid)
        row = db.add_sample_file_dir(str(sample_dir), dir_uuid)
        for i in range(streams):
            cfg = StreamConfig(
                url=f"rtsp://cam{i}/main", retain_bytes=retain_bytes, flush_if_sec=flush_if_sec
            )
            db.add_camera(f"cam{i}", config=CameraConfig(), streams={"main": (row.id, cfg)})
        db.insert_video_sample_entry(TEST_SAMPLE_ENTRY)


def open_env(
    root: Path,
    *,
    now: Callable[[], Time],
    monotonic: Callable[[], Duration] | None = None,
    tz: dt.tzinfo = dt.UTC,
) -> RecordingEnv:
    """Opens what ``create_env`` made, as the daemon does at start-up: database, the
    directory through the interlock (wrapped in a ``FaultyDir``), start-up cleanup."""
    db_dir, sample_dir = root / "db", root / "sample"
    db = Database.open(db_dir, tz=tz, now=now, monotonic=monotonic)
    try:
        dir_id = next(iter(db.dirs))
        sdir = FaultyDir.wrap(open_for_database(db, dir_id, read_only=False))
    except BaseException:
        db.close()
        raise
    try:
        remove_garbage_and_uncommitted(db, dir_id, sdir)
        if db.has_unflushed_work():
            db.flush("startup")
        entry_id = db.insert_video_sample_entry(TEST_SAMPLE_ENTRY)
    except BaseException:
        sdir.close()
        db.close()
        raise
    stream_ids = sorted(db.streams)
    return RecordingEnv(db_dir, sample_dir, db, sdir, dir_id, stream_ids, entry_id)
