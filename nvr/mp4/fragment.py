"""Live fragments: one ``moof`` + ``mdat`` media segment for frames held in memory.

``nvr.mp4.file`` builds media segments from recordings in the database (their index
and sample files); live view (``nvr.web.live``) needs the same kind of segment for the
frames a camera has just sent, before any index exists. The segment pairs with the
init segment ``build_init`` makes for the frames' sample entry; its ``tfdt`` is the
first frame's media time within its recording, as in ``view.m4s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nvr.mp4.boxes import SAMPLE_FLAGS_KEY, SAMPLE_FLAGS_NON_KEY, BoxWriter, mdat_header
from nvr.mp4.file import VIDEO_TRACK_ID

_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400  # offset, duration, size, flags


class FragmentFrame(Protocol):
    @property
    def data(self) -> bytes | bytearray: ...
    @property
    def is_key(self) -> bool: ...
    @property
    def duration(self) -> int: ...


def build_fragment(frames: Sequence[FragmentFrame], base_media_time: int, sequence: int) -> bytes:
    """The media segment of ``frames`` (in decode order), starting at ``base_media_time``
    (90 kHz); ``sequence`` is the ``mfhd`` sequence number."""
    w = BoxWriter()
    with w.box(b"moof"):
        with w.full_box(b"mfhd"):
            w.u32(sequence)
        with w.box(b"traf"):
            with w.full_box(b"tfhd", 0, 0x02_0000):  # default-base-is-moof
                w.u32(VIDEO_TRACK_ID)
            with w.full_box(b"tfdt", 1):
                w.u64(base_media_time)
            with w.full_box(b"trun", 0, _TRUN_FLAGS):
                w.u32(len(frames))
                offset_at = len(w)
                w.u32(0)  # data_offset: patched below, once the moof size is known
                for f in frames:
                    w.u32(f.duration)
                    w.u32(len(f.data))
                    w.u32(SAMPLE_FLAGS_KEY if f.is_key else SAMPLE_FLAGS_NON_KEY)
    payload = sum(len(f.data) for f in frames)
    w.write(mdat_header(payload))
    w.buf[offset_at : offset_at + 4] = len(w).to_bytes(4, "big")
    return b"".join([w.getvalue(), *(f.data for f in frames)])
