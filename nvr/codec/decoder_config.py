"""Decoder configuration records read back, whichever the codec.

A sample entry's ``data`` is an ``avcC`` (H.264) or ``hvcC`` (H.265) box; its payload, the
decoder configuration record, is also what an ``.mp4`` file's video stream carries as
codec extradata. ``parameter_sets`` turns one into the parameter set NAL units it holds
(for the in-band copies ``nvr.mp4`` writes at a change of sample entry, and for the PyAV
reader's first sample entry). The box formats themselves are ``h264``'s and ``h265``'s.
"""

from __future__ import annotations

from nvr.base.errors import InvalidArgument
from nvr.codec import h264, h265

#: the parameter set types of an ``hvcC`` record nvr uses, in the order a decoder wants them
_H265_PARAMETER_TYPES = (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS)


def parameter_sets(box_type: bytes, record: bytes) -> tuple[list[bytes], int]:
    """The parameter sets (H.264: SPSs then PPSs; H.265: its first VPS, SPS and PPS) and the
    NAL length size of a ``box_type`` (``b"avcC"`` or ``b"hvcC"``) record. Raises
    ``DataLoss`` when the record is truncated."""
    if box_type == b"avcC":
        sps, pps, length_size = h264.parse_avcc_record(record)
        return [*sps, *pps], length_size
    if box_type == b"hvcC":
        by_type, length_size = h265.parse_hvcc_record(record)
        return [by_type[t] for t in _H265_PARAMETER_TYPES if t in by_type], length_size
    raise InvalidArgument(f"no decoder configuration record of type {box_type!r}")
