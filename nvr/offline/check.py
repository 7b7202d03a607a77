"""``nvr check``: verifies every storage invariant (docs/design.md, "On-disk formats"),
reporting problems.

Checked, with the database open read-only (the daemon stopped; or, with ``live=True``,
running: see below):
- SQLite's own ``integrity_check`` and foreign keys;
- each sample-file directory's meta file against the database (the open interlock);
- every recording row: its file exists with exactly ``sample_file_bytes`` bytes, its
  ``video_index`` decodes and agrees with the row (frames, key frames, bytes, media
  duration) and with the row's stored index summary (checked only once the index itself
  is sound, so one corruption gives one line), its wall duration is under 5 minutes and
  within 500 ppm of its media duration, its id is below the stream's ``cum_recordings``;
- consecutive recordings of a stream: ``prev_media_duration_90k`` adds up, and
  recordings of one run abut exactly; the stream's ``cum_media_duration_90k`` matches;
- every file in a directory has a row, a garbage row, or an id that was never committed
  (a redaction's piece, ``nvr.storage.redact``: no row);
- no redacted frame survives: no recording overlaps a redaction's range (the daemon's
  syncer cuts or deletes every recording a tombstone hides; one still there is reported
  until it has);
- optionally (``hash=True``) each file's SHA-256 against ``recording_integrity``;
- signals (``Database.signal_problems``, one scan of every change): each change's state
  is one its type has (or 0, unknown), no change repeats the state before it, and none is
  older than the oldest recording of the signal's cameras (not while live: the daemon
  prunes those after its flushes).
- the stored per-hour motion and per-day signal totals (``Database.event_total_problems``,
  one more scan of the summaries and changes) equal their recomputation.

Each problem is one line. Repairs happen only behind explicit flags, and then the
database is opened read-write (still with the daemon stopped: it takes the exclusive lock):
- ``delete_orphan_rows``: recordings whose sample file is missing lose their rows (one
  transaction at the end of the scan);
- ``trash_orphan_files``: files with no row, no garbage row and an id that was committed
  (or of an unknown stream) are moved to the directory's ``trash/`` subdirectory, never
  deleted: a person decides what to do with them.
A repaired problem's line ends with what was done; ``CheckReport.unrepaired`` counts the rest.

``live=True`` checks while the daemon runs (``nvr check`` does so when the database is
locked; repairs are refused then): the database and directories are opened read-only
without their locks, and what the daemon changes meanwhile is not reported: a row whose
file was not listed is looked at again (a file created after the listing, or a row
deleted and its file unlinked since), and so is a listed file without a row (deleted
since). Recordings not yet committed are not checked.

Long scans show a progress bar on ``progress`` (the CLI passes stderr only when it is a
terminal). Speed: one ``stat`` per file and one pass over the recording table, decoding
each ``video_index`` with numpy; ``tests/bench/bench_check.py`` measures 1 million files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from nvr.base import errors
from nvr.base.time90k import Time
from nvr.db.database import Database
from nvr.db.frames_summary import check_summary, summarize
from nvr.db.raw import split_composite_id
from nvr.db.recording import IndexTotals, decode_video_index
from nvr.db.redactions import is_piece
from nvr.db.types import MAX_RECORDING_WALL_DURATION, CheckedRecording
from nvr.storage.dir import OpenRef, SampleFileDir, check_interlock, file_name
from nvr.storage.writer import MAX_CORRECTION_PPM

HASH_CHUNK = 1 << 20


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    recordings: int = 0
    files: int = 0
    garbage: int = 0
    uncommitted_files: int = 0
    redacted: int = 0  # recordings overlapping a tombstone (each also a problem)
    repaired: int = 0  # problems fixed by a repair flag

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unrepaired(self) -> int:
        return len(self.problems) - self.repaired


class Progress:
    """A one-line progress bar (``\r``-rewritten) for long scans; silent without a stream.
    Redraws at most ~200 times per phase, so it costs nothing on a million items."""

    WIDTH = 30

    def __init__(self, out: TextIO | None) -> None:
        self._out = out
        self._phase = ""
        self._total = 0
        self._done = 0
        self._next_draw = 0

    def start(self, phase: str, total: int) -> None:
        self._phase, self._total, self._done = phase, total, 0
        self._next_draw = 0
        self._draw()

    def advance(self, n: int = 1) -> None:
        self._done += n
        if self._done >= self._next_draw:
            self._draw()

    def finish(self) -> None:
        if self._out is not None and self._phase:
            self._done = self._total
            self._draw()
            self._out.write("\n")
            self._out.flush()
        self._phase = ""

    def _draw(self) -> None:
        if self._out is None:
            return
        self._next_draw = self._done + max(1, self._total // 200)
        frac = min(1.0, self._done / self._total) if self._total else 1.0
        filled = round(frac * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self._out.write(
            f"\r{self._phase:<22} [{bar}] {self._done}/{self._total} {frac:4.0%}"
        )
        self._out.flush()


@dataclass(slots=True)
class _Prev:
    recording_id: int
    prev_media: int
    media: int
    run_offset: int
    end_time: Time


def check(db_dir: Path | str, *, hash_files: bool = False,
          now: Callable[[], Time] | None = None,
          delete_orphan_rows: bool = False, trash_orphan_files: bool = False,
          progress: TextIO | None = None, live: bool = False) -> CheckReport:
    """Checks the database in ``db_dir`` and its directories; see the module docstring."""
    repair = delete_orphan_rows or trash_orphan_files
    if repair and live:
        raise errors.FailedPrecondition("repairs need the daemon stopped")
    db = Database.open(db_dir, read_only=not repair, tz=dt.UTC, now=now or (lambda: 0),
                       lock=not live)  # fmt: skip
    try:
        checker = _Checker(db, hash_files, Progress(progress))
        checker.live = live
        checker.delete_orphan_rows = delete_orphan_rows
        checker.trash_orphan_files = trash_orphan_files
        return checker.run()
    finally:
        db.close()


class _Checker:
    def __init__(self, db: Database, hash_files: bool, progress: Progress) -> None:
        self.db = db
        self.hash_files = hash_files
        self.progress = progress
        self.delete_orphan_rows = False
        self.trash_orphan_files = False
        self.report = CheckReport()
        self.dirs: dict[int, SampleFileDir] = {}
        self.files: dict[int, dict[int, int]] = {}  # dir id -> composite id -> size
        self.orphan_rows: list[int] = []  # composite ids of rows whose file is missing
        self.live = False  # the daemon runs: see the module docstring

    def problem(self, msg: str) -> None:
        self.report.problems.append(msg)

    def run(self) -> CheckReport:
        try:
            self.check_sqlite()
            self.open_dirs()
            self.check_recordings()
            self.check_files()
            # live: the daemon prunes changes after its flushes, so stale ones are expected
            for line in self.db.signal_problems(retention=not self.live):
                self.problem(line)
            for line in self.db.event_total_problems():
                self.problem(line)
            if self.orphan_rows and self.delete_orphan_rows:
                self.db.delete_recording_rows(self.orphan_rows)
                self.report.repaired += len(self.orphan_rows)
        finally:
            self.progress.finish()
            for d in self.dirs.values():
                d.close()
        return self.report

    def check_sqlite(self) -> None:
        for line in self.db.integrity_check():
            self.problem(f"database: {line}")

    def open_dirs(self) -> None:
        for dir_id, row in self.db.dirs.items():
            try:
                sdir = SampleFileDir.open(row.path, read_only=not self.trash_orphan_files,
                                          lock=not self.live)  # fmt: skip
            except errors.NvrError as e:
                self.problem(f"dir {row.path}: cannot open: {e}")
                continue
            self.dirs[dir_id] = sdir
            expected = None
            if row.last_complete_open_id is not None:
                u = self.db.open_uuid_of(row.last_complete_open_id)
                expected = None if u is None else OpenRef(row.last_complete_open_id, u)
            try:
                check_interlock(sdir.meta, path=row.path, db_uuid=self.db.uuid,
                                dir_uuid=row.uuid, last_complete_open=expected)
            except errors.FailedPrecondition as e:
                self.problem(f"dir {row.path}: {e}")
            ids, others = sdir.list_files()
            for name in others:
                self.problem(f"dir {row.path}: unexpected entry {name!r}")
            sizes: dict[int, int] = {}
            self.progress.start(f"scanning dir {dir_id}", len(ids))
            for cid in ids:
                self.progress.advance()
                try:
                    size = sdir.file_size(cid)
                except errors.NvrError as e:
                    self.problem(f"dir {row.path}: {e}")
                    continue
                if size is not None:  # None: gone since listed
                    sizes[cid] = size
            self.progress.finish()
            self.files[dir_id] = sizes
            self.report.files += len(sizes)

    def check_recordings(self) -> None:
        prev: dict[int, _Prev] = {}
        last_seen: dict[int, _Prev] = {}
        self.progress.start("checking recordings", self.db.count_recordings())
        for checked in self.db.iter_all_recordings():
            self.progress.advance()
            self.report.recordings += 1
            r = checked.recording
            name = file_name(r.composite_id)
            stream = self.db.streams.get(r.stream_id)
            if stream is None:
                self.problem(f"recording {name}: its stream {r.stream_id} does not exist")
                continue
            rec_id = r.recording_id
            tombstones = self.db.redactions_overlapping(r.stream_id, r.start_time_90k,
                                                        r.end_time_90k)
            if tombstones:
                self.report.redacted += 1
                self.problem(
                    f"recording {name}: overlaps redaction "
                    f"{', '.join(str(t.id) for t in tombstones)}: redacted frames are still "
                    "on disk (the daemon's syncer removes them)")
            if is_piece(rec_id):
                pass  # a redaction's piece: outside the stream's counter and sequence
            elif rec_id >= stream.cum_recordings:
                self.problem(
                    f"recording {name}: id {rec_id} >= stream's cum_recordings "
                    f"{stream.cum_recordings}"
                )
            self.check_row_durations(name, r.wall_duration_90k, r.media_duration_90k)
            self.check_index(name, checked)
            self.check_file(name, stream.sample_file_dir_id, checked)
            p = prev.get(stream.id)
            cur = _Prev(rec_id, r.prev_media_duration_90k, r.media_duration_90k, r.run_offset,
                        r.end_time_90k)
            if is_piece(rec_id):
                continue
            if p is not None and p.recording_id + 1 == rec_id:
                self.check_sequence(name, p, cur, r.start_time_90k)
            prev[stream.id] = cur
            last_seen[stream.id] = cur
        self.progress.finish()
        for sid, last in last_seen.items():
            s = self.db.streams[sid]
            if last.recording_id == s.cum_recordings - 1 and (
                last.prev_media + last.media != s.cum_media_duration_90k
            ):
                self.problem(
                    f"stream {sid}: cum_media_duration_90k {s.cum_media_duration_90k} != last "
                    f"recording's prev + media {last.prev_media + last.media}"
                )

    def check_row_durations(self, name: str, wall: int, media: int) -> None:
        if not 0 <= wall < MAX_RECORDING_WALL_DURATION:
            self.problem(f"recording {name}: wall duration {wall} is not under 5 minutes")
        if abs(wall - media) > media * MAX_CORRECTION_PPM // 1_000_000:
            self.problem(
                f"recording {name}: wall duration {wall} differs from media duration "
                f"{media} by more than {MAX_CORRECTION_PPM} ppm"
            )

    def check_index(self, name: str, checked: CheckedRecording) -> None:
        if checked.video_index is None:
            self.problem(f"recording {name}: no recording_playback row")
            return
        r = checked.recording
        expected = IndexTotals(r.video_samples, r.video_sync_samples, r.sample_file_bytes,
                               r.media_duration_90k)
        try:
            check_summary(r.index_summary,
                          summarize(decode_video_index(checked.video_index, expected)))
        except errors.DataLoss as e:
            self.problem(f"recording {name}: {e}")

    def check_file(self, name: str, dir_id: int | None, checked: CheckedRecording) -> None:
        cid, want = checked.recording.composite_id, checked.recording.sample_file_bytes
        sizes = self.files.get(dir_id) if dir_id is not None else None
        if dir_id is None or sizes is None:
            return  # the directory itself was reported
        size = sizes.pop(cid, None)
        if size is None and self.live:
            size = self.dirs[dir_id].file_size(cid)  # made after the listing?
            if size is None and not self.db.recording_exists(cid):
                return  # deleted since it was read
        if size is None:
            if self.delete_orphan_rows:
                self.orphan_rows.append(cid)
                self.problem(f"recording {name}: sample file is missing; row deleted")
            else:
                self.problem(f"recording {name}: sample file is missing")
            return
        if size != want:
            self.problem(f"recording {name}: sample file is {size} bytes, row says {want}")
            return
        sha = checked.sample_file_sha256
        if self.hash_files and sha is not None:
            got = self.hash_file(dir_id, cid)
            if got != sha:
                self.problem(f"recording {name}: sample file's SHA-256 differs from the row's")

    def hash_file(self, dir_id: int, cid: int) -> bytes:
        f = self.dirs[dir_id].open_for_reading(cid)
        h = hashlib.sha256()
        try:
            offset = 0
            while chunk := f.pread(offset, HASH_CHUNK):
                h.update(chunk)
                offset += len(chunk)
        finally:
            f.close()
        return h.digest()

    def check_sequence(self, name: str, p: _Prev, cur: _Prev, start: Time) -> None:
        if cur.prev_media != p.prev_media + p.media:
            self.problem(
                f"recording {name}: prev_media_duration_90k {cur.prev_media} != previous "
                f"recording's {p.prev_media} + {p.media}"
            )
        if cur.run_offset > 0:
            if cur.run_offset != p.run_offset + 1:
                self.problem(
                    f"recording {name}: run_offset {cur.run_offset} does not follow "
                    f"{p.run_offset}"
                )
            elif start != p.end_time:
                self.problem(
                    f"recording {name}: starts at {start} but the previous recording of "
                    f"its run ends at {p.end_time}"
                )

    def check_files(self) -> None:
        garbage = self.db.all_garbage()
        for dir_id, sizes in self.files.items():
            path = self.db.dirs[dir_id].path
            for cid in sorted(sizes):
                stream_id, rec_id = split_composite_id(cid)
                stream = self.db.streams.get(stream_id)
                if (dir_id, cid) in garbage:
                    self.report.garbage += 1
                elif self.live and (self.dirs[dir_id].file_size(cid) is None
                                    or self.db.recording_exists(cid)):
                    pass  # deleted, or committed, since the listing
                elif stream is not None and (is_piece(rec_id) or rec_id >= stream.cum_recordings):
                    self.report.uncommitted_files += 1
                else:
                    why = (f"of unknown stream {stream_id}" if stream is None
                           else "has no recording row")
                    line = f"dir {path}: file {file_name(cid)} {why}"
                    if self.trash_orphan_files:
                        line += f"; moved to {self.dirs[dir_id].trash(cid)}"
                        self.report.repaired += 1
                    self.problem(line)
