"""Decoding for motion analysis: H.264/H.265 frames (as recorded: length-prefixed NAL
units, parameter sets in the sample entry) to small luma pictures, with PyAV. Called in a
worker thread (``nvr.base.blocking.run_blocking``); holds no trio state.

Every frame is decoded (P-frames need their references) but only the frames asked for
are scaled (decoding skips the deblocking filter: the pictures are for analysis, not for
people): FFmpeg's area-averaging scaler turns the picture into the detector's
``ANALYSIS_WIDTH`` x ``ANALYSIS_HEIGHT`` grey picture, which costs far less than the
decode. When analysis falls behind, the task drops frames up to the next key frame
before they reach here (``nvr.motion.task``), so the decoder restarts cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import av
import numpy as np

from nvr.base.errors import DataLoss
from nvr.db.recording import VideoSampleEntry
from nvr.motion.detector import ANALYSIS_HEIGHT, ANALYSIS_WIDTH, Luma

_CODECS = {b"avcC": "h264", b"hvcC": "hevc"}


class LumaDecoder:
    """One stream's decoder; recreated when the sample entry changes."""

    def __init__(self, entry: VideoSampleEntry) -> None:
        codec = _CODECS.get(entry.codec_box_type)
        if codec is None:
            raise DataLoss(f"cannot decode {entry.codec_box_type!r} video")
        self.entry = entry
        self._ctx: Any = av.CodecContext.create(codec, "r")
        self._ctx.extradata = entry.data[8:]
        self._ctx.thread_count = 1  # one camera, one core at most: threads cost more CPU
        # No deblocking: ~17% less decoding CPU; the detector looks at 160x96 averages,
        # where block edges do not show.
        self._ctx.options = {"skip_loop_filter": "all"}
        self.errors = 0

    def decode(self, frames: Sequence[tuple[bytes, bool]]) -> list[Luma | None]:
        """Decodes ``(data, analyse)`` frames in order; for each, the analysis picture if
        ``analyse`` and the decoder produced a picture, else None. Undecodable frames are
        counted in ``errors`` and give None."""
        out: list[Luma | None] = []
        for data, analyse in frames:
            try:
                pictures = self._ctx.decode(av.Packet(data))
            except av.FFmpegError:
                self.errors += 1
                out.append(None)
                continue
            luma: Luma | None = None
            if analyse and pictures:
                small = pictures[-1].reformat(
                    width=ANALYSIS_WIDTH, height=ANALYSIS_HEIGHT, format="gray",
                    interpolation="AREA",
                )
                luma = np.ascontiguousarray(small.to_ndarray())
            out.append(luma)
        return out
