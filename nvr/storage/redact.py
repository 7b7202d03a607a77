"""Byte removal for redactions: which frames of a recording survive its tombstones, and
the new sample files that hold them (docs/design.md, "Redaction: byte removal").

Pure planning (``plan_cut``) and one blocking file operation (``write_piece``, through
the thread seam); the syncer drives both and ``Database.replace_recording`` commits the
result. Not here: SQL, deciding when to run, deleting the old file (the garbage path).

**What survives.** Frame ``i`` of a recording occupies the wall-time interval from its
start to the next frame's (the recording's end for the last; a zero-duration last frame
is a point), with media offsets scaled to wall time exactly as ``nvr.mp4.selection``
does (``offset * wall // media``). A frame is *redacted* when that interval overlaps a
tombstone's ``[start, end)``. The recording's frames then fall into maximal runs of
unredacted frames; each run becomes one *piece* (a new recording), except that a run
following a redacted frame starts at its first key frame: its frames before that key
frame depend on redacted ones and cannot decode, so they go too (at most one GOP per
cut). A run before a range keeps every frame up to the range (a prefix of a GOP decodes).
Runs with no key frame, or no media duration, are dropped; rounding that would make a
piece's span touch a tombstone drops its last frame. So nothing inside a range survives,
everything outside it survives except the GOP tail after each range's end.

**Piece ids.** Pieces take recording ids from ``PIECE_BASE`` up, outside the stream's
counter (the stream's next id is held by the recording being written):
``PIECE_BASE + 2 * tombstone id`` for the piece just before a tombstone that starts inside
the recording, ``... + 1`` for the piece just after one that ends inside it (the head
piece is named by its following tombstone, every other by its preceding one). A
tombstone's start or end lies inside one recording of a stream, so each id is made at
most once; the syncer refuses a cut whose id is taken. A piece is its own run
(``run_offset`` 0), keeps the original's ``prev_media_duration_90k`` plus its media
offset, and its ``end_reason`` is ``"redacted"`` unless it is the original's tail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nvr.base import errors
from nvr.db.frames_summary import summarize
from nvr.db.raw import PIECE_END, RecordingRow, composite_id
from nvr.db.recording import VideoIndexArrays, VideoIndexEncoder, decode_video_index
from nvr.db.redactions import PIECE_BASE, Redaction
from nvr.db.types import FLAG_TRAILING_ZERO, ListedRecording
from nvr.storage.dir import SampleFileDir
from nvr.storage.writer import MAX_CORRECTION_PPM

#: bytes copied per read when writing a piece
COPY_CHUNK = 4 << 20
END_REASON = "redacted"


@dataclass(frozen=True, slots=True)
class Piece:
    """One surviving run of frames: its row (without the file's SHA-256, known once
    written) and where its bytes are in the old sample file."""

    row: RecordingRow
    offset: int
    length: int


def _overlaps(t: Redaction, start: int, end: int) -> bool:
    """The listing filter's test (``Database.is_hidden``) for one tombstone."""
    return t.start_time_90k < max(end, start + 1) and t.end_time_90k > start


def plan_cut(rec: ListedRecording, index: VideoIndexArrays | bytes,
             tombstones: Sequence[Redaction], open_id: int) -> list[Piece]:
    """The pieces of ``rec`` that survive ``tombstones`` (those overlapping it), in time
    order; empty when nothing survives. See the module docstring."""
    idx = index if isinstance(index, VideoIndexArrays) else decode_video_index(index)
    n = len(idx.durations)
    wall, media = rec.wall_duration_90k, rec.media_duration_90k
    starts = idx.starts
    ws = rec.start_time_90k + (starts * wall // media if media > 0 else starts * 0)
    we = np.append(ws[1:], rec.start_time_90k + wall)
    redacted = np.zeros(n, dtype=bool)
    for t in tombstones:
        redacted |= (ws < t.end_time_90k) & (np.maximum(we, ws + 1) > t.start_time_90k)
    if not redacted.any():
        raise errors.Internal(f"recording {rec.composite_id:016x} has no redacted frame")
    is_key = idx.is_key

    def touching(i: int) -> list[Redaction]:
        return [t for t in tombstones
                if t.start_time_90k < max(int(we[i]), int(ws[i]) + 1)
                and t.end_time_90k > int(ws[i])]

    pieces: list[Piece] = []
    i = 0
    while i < n:
        if redacted[i]:
            i += 1
            continue
        j = i
        while j < n and not redacted[j]:
            j += 1
        s = i
        while i > 0 and s < j and not is_key[s]:
            s += 1
        if s < j:
            if i == 0:  # the head piece: named by the tombstone that follows it
                t = min(touching(j), key=lambda x: (x.start_time_90k, x.id))
                rid = PIECE_BASE + 2 * t.id
            else:
                t = max(touching(i - 1), key=lambda x: (x.end_time_90k, x.id))
                rid = PIECE_BASE + 2 * t.id + 1
            piece = _piece(rec, idx, s, j, rid, tombstones, open_id)
            if piece is not None:
                pieces.append(piece)
        i = j
    return pieces


def _piece(rec: ListedRecording, idx: VideoIndexArrays, s: int, j: int, rid: int,
           tombstones: Sequence[Redaction], open_id: int) -> Piece | None:
    """The piece of frames ``[s, j)`` with recording id ``rid``, shortened by a frame at a
    time while its span would touch a tombstone; None if nothing is left."""
    if rid >= PIECE_END:
        raise errors.Internal(f"redaction piece id {rid} does not fit a signed 32-bit id")
    wall, media = rec.wall_duration_90k, rec.media_duration_90k
    n = len(idx.durations)
    while j > s:
        m0 = int(idx.starts[s])
        m1 = int(idx.starts[j - 1] + idx.durations[j - 1])
        piece_media = m1 - m0
        if piece_media <= 0:
            return None
        start = rec.start_time_90k + (m0 * wall // media)
        end = rec.start_time_90k + (m1 * wall // media if j < n else wall)
        tol = piece_media * MAX_CORRECTION_PPM // 1_000_000
        piece_wall = min(max(end - start, piece_media - tol), piece_media + tol)
        if not any(_overlaps(t, start, start + piece_wall) for t in tombstones):
            break
        j -= 1
    else:
        return None
    enc = VideoIndexEncoder()
    for k in range(s, j):
        enc.add(int(idx.durations[k]), int(idx.sizes[k]), bool(idx.is_key[k]))
    totals = enc.totals
    tail = j == n
    offset = int(idx.offsets[s])
    row = RecordingRow(
        composite_id=composite_id(rec.stream_id, rid),
        open_id=open_id,
        run_offset=0,
        flags=rec.flags & FLAG_TRAILING_ZERO if tail else 0,
        sample_file_bytes=totals.bytes,
        start_time_90k=start,
        prev_media_duration_90k=rec.prev_media_duration_90k + m0,
        prev_runs=rec.prev_runs,
        wall_duration_90k=piece_wall,
        media_duration_delta_90k=piece_media - piece_wall,
        video_samples=totals.frames,
        video_sync_samples=totals.key_frames,
        video_sample_entry_id=rec.video_sample_entry_id,
        end_reason=rec.end_reason if tail else END_REASON,
        local_time_delta_90k=None,
        local_time_since_open_90k=None,
        wall_time_delta_90k=None,
        sample_file_sha256=None,
        video_index=enc.data,
        summary=summarize(decode_video_index(enc.data)),
    )
    return Piece(row, offset, totals.bytes)


def write_piece(sdir: SampleFileDir, old_cid: int, piece: Piece) -> bytes:
    """Blocking: writes ``piece``'s bytes, copied from the old sample file, as a new file
    named by its id (a leftover of an attempt that never committed is removed first),
    fsyncs it and returns its SHA-256. The caller fsyncs the directory."""
    new_cid = piece.row.composite_id
    sdir.unlink(new_cid)  # uncommitted: the caller checked no row or garbage names it
    src = sdir.open_for_reading(old_cid)
    h = hashlib.sha256()
    try:
        fd = sdir.create_file(new_cid)
        try:
            done = 0
            while done < piece.length:
                n = min(COPY_CHUNK, piece.length - done)
                chunk = src.pread(piece.offset + done, n)
                if len(chunk) != n:
                    raise errors.DataLoss(
                        f"sample file {old_cid:016x} ends at {piece.offset + done + len(chunk)}"
                        f", before the piece's end at {piece.offset + piece.length}")
                sdir.write_all(fd, [chunk])
                h.update(chunk)
                done += n
        finally:
            sdir.close_file(fd)
    finally:
        src.close()
    sdir.sync_file(new_cid)
    return h.digest()
