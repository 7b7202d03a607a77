"""The ``ts=true`` text track: one wall-clock timestamp sample per second of the movie.

As Moonfire NVR's ``ts=true`` does, a ``.mp4`` may carry a second track of ``tx3g`` text
samples, each the local time (``2026-01-02 03:04:05 +0000``, in the server's time zone) of
one second of the presentation; the first and last may be partial. ``Subtitles`` is the
track's samples: laid out as one generated piece at the end of the file (every sample is
the same size, so its length and offsets are known without formatting any) and formatted
through the ``Runner`` at most ``SUBTITLES_PER_CALL`` at a time when a byte range asks.
Its ETag ``signature`` covers the zone's name and every change of its UTC offset over the
span, so new time zone rules change the ETag. ``subtitle_trak`` writes the track's boxes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nvr.base.time90k import UNITS_PER_SEC, Time
from nvr.mp4.boxes import BoxWriter
from nvr.mp4.movie_boxes import SUBTITLE_TRACK_ID, chunk_offsets, stsc, stts_runs, trak
from nvr.mp4.selection import Runner, Selection, media_to_wall

#: At most this many subtitle samples are formatted per worker-thread call.
SUBTITLES_PER_CALL = 4096

#: The track's sample entry type: its RFC 6381 ``codecs`` name in ``Content-Type``.
SUBTITLE_CODEC = "tx3g"

_SUBTITLE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
_SUBTITLE_LENGTH = 25  # len("2026-01-02 03:04:05 +0000"): every sample is the same size
_SUBTITLE_SAMPLE = 2 + _SUBTITLE_LENGTH


@dataclass(frozen=True, slots=True)
class Subtitles:
    """One text sample per wall-clock second (the first and last may be partial):
    sample ``i`` starts at ``start`` (i = 0) or ``first_second + (i - 1)`` seconds."""

    tz: dt.tzinfo
    start: Time
    end: Time
    first_second: Time
    count: int

    @classmethod
    def of(cls, first: Selection, tz: dt.tzinfo, movie_duration: int) -> Subtitles:
        """Timestamps for the presentation, taking wall time from the first segment's
        requested start (presentation time 0) and advancing with the movie."""
        rec = first.recording
        start = rec.start_time_90k + media_to_wall(rec, first.rel_start)
        end = start + movie_duration
        first_second = (start // UNITS_PER_SEC + 1) * UNITS_PER_SEC
        later = -(-(end - first_second) // UNITS_PER_SEC) if end > first_second else 0
        return cls(tz, start, end, first_second, 1 + later)

    def stts_runs(self) -> list[tuple[int, int]]:
        """(count, duration) runs of the samples' durations."""
        m = self.count - 1
        runs = [(1, (self.first_second if m else self.end) - self.start)]
        if m > 1:
            runs.append((m - 1, UNITS_PER_SEC))
        if m:
            runs.append((1, self.end - self.first_second - (m - 1) * UNITS_PER_SEC))
        merged: list[tuple[int, int]] = []
        for count, value in runs:
            if merged and merged[-1][1] == value:
                merged[-1] = (merged[-1][0] + count, value)
            else:
                merged.append((count, value))
        return merged

    @property
    def length(self) -> int:
        """Bytes of all samples."""
        return self.count * _SUBTITLE_SAMPLE

    def render(self, first: int, last: int) -> bytes:
        """Samples ``[first, last)``."""
        text = bytearray()
        for i in range(first, last):
            t = self.start if i == 0 else self.first_second + (i - 1) * UNITS_PER_SEC
            stamp = dt.datetime.fromtimestamp(t // UNITS_PER_SEC, self.tz).strftime(
                _SUBTITLE_FORMAT)
            encoded = stamp.encode()[:_SUBTITLE_LENGTH].ljust(_SUBTITLE_LENGTH)
            text += len(encoded).to_bytes(2, "big") + encoded
        return bytes(text)

    def _range(self, lo: int, hi: int) -> tuple[int, int]:
        first = lo // _SUBTITLE_SAMPLE
        return first, min(-(-hi // _SUBTITLE_SAMPLE), first + SUBTITLES_PER_CALL)

    async def read(self, lo: int, hi: int, run: Runner) -> bytes:
        first, last = self._range(lo, hi)
        data = await run(self.render, first, last)
        base = first * _SUBTITLE_SAMPLE
        return data[lo - base : hi - base]

    def read_sync(self, lo: int, hi: int) -> bytes:
        first, last = self._range(lo, hi)
        base = first * _SUBTITLE_SAMPLE
        return self.render(first, last)[lo - base : hi - base]

    def signature(self) -> bytes:
        """The zone's name and every change of its UTC offset over the span (found on a
        15-minute grid, then to the second), so new time zone rules change the ETag."""
        def offset(t: int) -> dt.timedelta | None:
            return dt.datetime.fromtimestamp(t, self.tz).utcoffset()

        lo, hi = self.start // UNITS_PER_SEC, self.end // UNITS_PER_SEC + 1
        out = [f"subtitles {getattr(self.tz, 'key', None) or self.tz!r} {offset(lo)}"]
        step = 900
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            if offset(a) != offset(b):
                x, y = a, b  # offset(x) != offset(y): find the first second of the new one
                while y - x > 1:
                    mid = (x + y) // 2
                    x, y = (mid, y) if offset(mid) == offset(x) else (x, mid)
                out.append(f"{y} {offset(y)}")
        return ("\n".join(out) + "\n").encode()


def subtitle_trak(w: BoxWriter, subs: Subtitles, movie_duration: int) -> int:
    """Writes the text track; returns where its one chunk offset goes."""
    with trak(w, SUBTITLE_TRACK_ID, movie_duration, subs.end - subs.start, handler=b"sbtl"):
        _tx3g_stsd(w)
        stts_runs(w, subs.stts_runs())
        stsc(w, [subs.count], [1])
        with w.full_box(b"stsz"):
            w.u32(_SUBTITLE_SAMPLE)
            w.u32(subs.count)
        return chunk_offsets(w, 1, wide=True)


def _tx3g_stsd(w: BoxWriter) -> None:
    with w.full_box(b"stsd"):
        w.u32(1)
        with w.box(SUBTITLE_CODEC.encode()):
            w.zeros(6)
            w.u16(1)  # data_reference_index
            w.u32(0)  # displayFlags
            w.u8(0)  # horizontal justification: left
            w.u8(0)  # vertical justification: top
            w.u32(0)  # background rgba: transparent
            w.zeros(8)  # BoxRecord
            w.u16(0)  # StyleRecord: startChar
            w.u16(0)  # endChar
            w.u16(1)  # font-ID
            w.u8(0)  # face style
            w.u8(18)  # font size
            w.u32(0xFFFF_FFFF)  # text colour: opaque white
            with w.box(b"ftab"):
                w.u16(1)
                w.u16(1)
                name = b"Monospace"
                w.u8(len(name))
                w.write(name)
