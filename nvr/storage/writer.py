"""One recording's writer: its sample file, its index and its timing.

The streamer feeds frames (length-prefixed NAL units with a 90 kHz pts and a key flag)
in batches stamped with their local arrival time. The writer

- reserves the recording in the database (pending, growing) and creates its file with
  ``O_EXCL`` on the first frame, which must be a key frame;
- appends each batch to the file with one blocking call (which also feeds the SHA-256);
- keeps the ``video_index`` one frame behind: a frame's duration is known when the next
  frame (or the ``next_pts`` given to ``close``) arrives; an unclean close gives the last
  frame duration 0 (the "trailing zero" flag);
- computes the wall duration: the media duration corrected toward the local clock by at
  most 500 ppm (docs/design.md, "Time"), and where the run's next recording starts;
- refuses, before accepting it, a frame that would make the recording 5 minutes of wall
  time or longer (``RecordingTooLong``: the caller closes at that frame and drops the run);
- on a write error truncates the file back to the frames it holds intact and ends the
  recording there, so nothing already written is lost;
- once the index is final (``close``), summarizes it for ``.mp4`` layouts
  (``nvr.db.frames_summary``, in a worker thread: ~0.15 ms for a minute at 30 fps), which
  the commit stores in the recording's row;
- hands the finished recording to its directory's syncer, in order.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.time90k import Duration, Time
from nvr.db.database import Database
from nvr.db.frames_summary import summarize_index
from nvr.db.recording import VideoIndexEncoder
from nvr.db.types import FLAG_TRAILING_ZERO, MAX_RECORDING_WALL_DURATION, PendingRecording
from nvr.storage.dir import SampleFileDir

log = logging.getLogger(__name__)

#: the most the wall duration may differ from the media duration, in parts per million
MAX_CORRECTION_PPM = 500
#: longest media duration a recording may reach: even fully corrected by +500 ppm its
#: wall duration stays below 5 minutes
MAX_MEDIA_DURATION: Duration = (
    (MAX_RECORDING_WALL_DURATION - 1) * 1_000_000 // (1_000_000 + MAX_CORRECTION_PPM)
)


class Frame(Protocol):
    """What the writer needs of a frame (``nvr.ingest.source.Packet`` fits)."""

    @property
    def data(self) -> bytes | bytearray: ...
    @property
    def pts(self) -> int: ...
    @property
    def is_key(self) -> bool: ...


class RecordingSink(Protocol):
    """Where finished recordings go: the directory's syncer."""

    async def submit(self, rec: PendingRecording) -> None: ...


class RecordingTooLong(errors.FailedPrecondition):
    """The next frame would make the recording reach 5 minutes; ``next_pts`` is its pts:
    close the writer with it and end the run."""

    def __init__(self, next_pts: int) -> None:
        super().__init__(
            "recording would reach 5 minutes without a key frame to rotate at; ending the run"
        )
        self.next_pts = next_pts


@dataclass(slots=True)
class Run:
    """Timing shared by the recordings of one run (one camera session)."""

    #: where the next recording starts (None until the first recording closes)
    next_start: Time | None = None
    #: recordings finished so far: the next one's ``run_offset``
    recordings: int = 0
    #: set when a recording of the run had to end early: the run must not continue
    broken: bool = False


def corrected_wall_duration(media: Duration, desired: Duration) -> Duration:
    """``media`` moved toward ``desired`` by at most ``MAX_CORRECTION_PPM``."""
    limit = media * MAX_CORRECTION_PPM // 1_000_000
    return media + max(-limit, min(limit, desired - media))


class RecordingWriter:
    """Writes one recording of ``stream_id`` into ``sdir``; see the module docstring."""

    def __init__(
        self,
        *,
        db: Database,
        sdir: SampleFileDir,
        sink: RecordingSink,
        stream_id: int,
        run: Run,
        video_sample_entry_id: int,
    ) -> None:
        self._db = db
        self._sdir = sdir
        self._sink = sink
        self._stream_id = stream_id
        self._run = run
        self._entry_id = video_sample_entry_id
        self._index = VideoIndexEncoder()
        self._sha = hashlib.sha256()
        self.rec: PendingRecording | None = None
        self._fd = -1
        self._first_pts = 0
        self._last: tuple[int, int, bool] | None = None  # (pts, bytes, is_key) not yet indexed
        self._file_bytes = 0  # bytes in the file, the unindexed last frame included
        self._local_start: Time | None = None  # earliest local arrival minus media offset
        self._closed = False
        self._failed = False  # a write failed: only close() is allowed now

    @property
    def frames(self) -> int:
        """Frames accepted so far (the last one is not yet in the index)."""
        return self._index.frames + (self._last is not None)

    @property
    def first_pts(self) -> int:
        """The pts of the recording's first frame (0 before the first write)."""
        return self._first_pts

    @property
    def media_duration_so_far(self) -> Duration:
        return 0 if self._last is None else self._last[0] - self._first_pts

    async def write(self, frames: Sequence[Frame], local_time: Time) -> None:
        """Appends frames that arrived at ``local_time``. Their pts must increase.

        Raises ``RecordingTooLong`` (after writing the frames before it) when a frame would
        make the recording too long. On a write error the file is cut back to what it held
        before this batch, the writer's state is unchanged and the error is raised: the
        caller then ``close``s, keeping everything written before.
        """
        if self._closed or self._failed:
            raise errors.Internal("write to a closed or failed recording writer")
        frames = [f for f in frames if f.data]
        if not frames:
            return
        if self.rec is None:
            await self._start(frames[0], local_time)
        staged: list[tuple[int, int, bool]] = []  # index entries to add once written
        last, local_start = self._last, self._local_start
        buf: list[bytes | bytearray] = []
        too_long: RecordingTooLong | None = None
        for f in frames:
            if last is not None:
                if f.pts <= last[0]:
                    raise errors.InvalidArgument(
                        f"frame timestamps must increase (got {f.pts} after {last[0]})"
                    )
                if f.pts - self._first_pts > MAX_MEDIA_DURATION:
                    too_long = RecordingTooLong(f.pts)
                    break
                staged.append((f.pts - last[0], last[1], last[2]))
            last = (f.pts, len(f.data), f.is_key)
            estimate = local_time - (f.pts - self._first_pts)
            local_start = estimate if local_start is None else min(local_start, estimate)
            buf.append(f.data)
        if buf:
            try:
                await run_blocking(self._write_and_hash, buf)
            except errors.NvrError:
                self._failed = True
                await self._cut_back()
                raise
            for entry in staged:
                self._index.add(*entry)
            self._last, self._local_start = last, local_start
            self._file_bytes += sum(len(b) for b in buf)
            self._publish()
        if too_long is not None:
            raise too_long

    async def _start(self, first: Frame, local_time: Time) -> None:
        if not first.is_key:
            raise errors.InvalidArgument("a recording must start with a key frame")
        start = self._run.next_start if self._run.next_start is not None else local_time
        self.rec = self._db.add_recording(
            self._stream_id,
            run_offset=self._run.recordings,
            start_time_90k=start,
            video_sample_entry_id=self._entry_id,
        )
        self._first_pts = first.pts
        try:
            self._fd = await run_blocking(self._create_file, self.rec.composite_id)
        except BaseException:
            self._db.abandon_recording(self.rec)
            self.rec = None
            raise

    def _create_file(self, cid: int) -> int:
        try:
            return self._sdir.create_file(cid)
        except errors.AlreadyExists:
            # Left by an earlier attempt at this id that was abandoned and could not be
            # unlinked then (the id was never committed, so the file is ours to replace).
            log.warning("replacing uncommitted leftover sample file %016x", cid)
            self._sdir.unlink(cid)
            return self._sdir.create_file(cid)

    def _write_and_hash(self, pieces: list[bytes | bytearray]) -> None:
        self._sdir.write_all(self._fd, pieces)
        for piece in pieces:
            self._sha.update(piece)

    async def _cut_back(self) -> None:
        """After a failed (possibly partial) write: truncates the file to the bytes it held
        before. If even that fails the tail is garbage the index does not describe, which
        readers never see; the hash is then wrong, and ``nvr check`` will say so."""
        try:
            await run_blocking(self._sdir.truncate, self._fd, self._file_bytes)
        except errors.NvrError as e:
            log.error("could not cut back sample file after a write error: %s", e)

    def _publish(self) -> None:
        """Makes the frames written so far visible to readers (growing recordings)."""
        rec = self.rec
        assert rec is not None
        self._copy_index(rec)
        rec.wall_duration_90k = rec.media_duration_90k
        if self._run.next_start is None and self._local_start is not None:
            rec.start_time_90k = self._local_start

    async def close(self, next_pts: int | None, end_reason: str | None = None) -> None:
        """Finishes the recording and hands it to the syncer.

        ``next_pts`` is the pts of the frame that follows (the first frame of the next
        recording): it gives the last frame its duration. ``None`` means the run ended
        uncleanly: the last frame gets duration 0. ``end_reason`` says why the run ended
        (None if it goes on). A writer that never got a frame does nothing.
        """
        if self._closed:
            return
        self._closed = True
        rec = self.rec
        if rec is None:
            return
        if self._last is None:
            # Even the first frame's write failed: nothing to keep.
            await self._abandon()
            return
        pts, nbytes, is_key = self._last
        # The last frame lasts until next_pts, but never past the 5-minute limit (when the
        # recording ends because the next frame would cross it).
        duration = (
            0 if next_pts is None else min(next_pts, self._first_pts + MAX_MEDIA_DURATION) - pts
        )
        if duration > 0:
            self._index.add(duration, nbytes, is_key)
        else:
            self._index.add(0, nbytes, is_key)
            rec.flags |= FLAG_TRAILING_ZERO
        self._last = None
        self._finish_timing(rec)
        rec.end_reason = end_reason
        rec.sample_file_sha256 = self._sha.digest()
        rec.index_summary = await run_blocking(summarize_index, rec.video_index)
        try:
            await run_blocking(self._sdir.close_file, self._fd)
        except errors.NvrError as e:
            log.warning("closing sample file %016x: %s", rec.composite_id, e)
        self._fd = -1
        self._db.mark_done(rec)
        await self._sink.submit(rec)

    def _copy_index(self, rec: PendingRecording) -> None:
        """The row's index and what it sums up, as written so far."""
        idx = self._index
        rec.video_index = idx.data
        rec.sample_file_bytes = idx.total_bytes
        rec.video_samples = idx.frames
        rec.video_sync_samples = idx.key_frames
        rec.media_duration_90k = idx.media_duration

    def _finish_timing(self, rec: PendingRecording) -> None:
        media = self._index.media_duration
        assert self._local_start is not None
        start = self._run.next_start if self._run.next_start is not None else self._local_start
        local_end = self._local_start + media
        wall = corrected_wall_duration(media, local_end - start)
        rec.start_time_90k = start
        self._copy_index(rec)
        rec.wall_duration_90k = wall
        rec.local_time_delta_90k = start - self._local_start
        rec.wall_time_delta_90k = start + wall - local_end
        self._run.next_start = start + wall
        self._run.recordings += 1

    async def _abandon(self) -> None:
        rec = self.rec
        assert rec is not None
        try:
            await run_blocking(self._sdir.close_file, self._fd)
            await run_blocking(self._sdir.unlink, rec.composite_id)
        except errors.NvrError as e:
            log.warning("removing abandoned sample file %016x: %s", rec.composite_id, e)
        self._db.abandon_recording(rec)
        self.rec = None
