"""Recording value types and the ``video_index`` codec (DESIGN.md §5).

``VideoSampleEntry`` describes the codec parameters of a run of frames (what an ``.mp4``'s
``stsd`` needs). The ``video_index`` of a recording stores, per frame, its duration, size
and key-frame flag in two protobuf-style varints, deltas against the previous frame.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VideoSampleEntry:
    """Codec parameters shared by consecutive frames.

    ``data`` is the complete ``avcC`` (H.264) or ``hvcC`` (H.265) box, header included.
    ``width``/``height`` are the displayed size after SPS cropping; ``pasp_*`` the pixel
    aspect ratio (1:1 when the SPS does not say). ``rfc6381_codec`` is e.g. ``avc1.64001f``.
    """

    width: int
    height: int
    rfc6381_codec: str
    data: bytes
    pasp_h_spacing: int = 1
    pasp_v_spacing: int = 1

    @property
    def codec_box_type(self) -> bytes:
        """``b"avcC"`` or ``b"hvcC"``: the four-character type of ``data``."""
        return self.data[4:8]
