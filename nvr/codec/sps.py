"""What H.264 and H.265 sequence parameter sets share: how to read them, and what nvr keeps.

Reading an RBSP (a NAL unit's payload with its emulation-prevention bytes removed,
``unescape_rbsp``) with an exp-Golomb ``BitReader``; the VUI's aspect ratio syntax, which
both codecs share (``aspect_ratio``); and ``PictureFormat``, the fields both codecs' sequence
parameter sets give nvr (chroma format, bit depths, displayed size, pixel aspect ratio),
from which ``sample_entry`` makes the stored ``VideoSampleEntry``. The codec-specific syntax
is in ``nvr.codec.h264`` and ``nvr.codec.h265``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nvr.base.errors import DataLoss
from nvr.db.recording import VideoSampleEntry

#: Table E-1 (H.264; H.265's is the same): sample aspect ratios by aspect_ratio_idc
_SAR_TABLE = {
    1: (1, 1), 2: (12, 11), 3: (10, 11), 4: (16, 11), 5: (40, 33), 6: (24, 11),
    7: (20, 11), 8: (32, 11), 9: (80, 33), 10: (18, 11), 11: (15, 11), 12: (64, 33),
    13: (160, 99), 14: (4, 3), 15: (3, 2), 16: (2, 1),
}  # fmt: skip
#: aspect_ratio_idc of an explicit sample aspect ratio in the VUI
EXTENDED_SAR = 255


def unescape_rbsp(nal_payload: bytes) -> bytes:
    """Removes emulation-prevention bytes (the ``03`` of ``00 00 03``)."""
    if b"\x00\x00\x03" not in nal_payload:
        return nal_payload
    out = bytearray()
    zeros = 0
    for byte in nal_payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """Reads bits, ``u(n)``, ``ue(v)`` and ``se(v)`` from an RBSP, most significant first.

    Reading past the end raises ``DataLoss``.
    """

    def __init__(self, rbsp: bytes) -> None:
        self._value = int.from_bytes(rbsp, "big")
        self._bits = len(rbsp) * 8
        self._pos = 0

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        end = self._pos + n
        if end > self._bits:
            raise DataLoss(f"parameter set truncated: needed bit {end} of {self._bits}")
        self._pos = end
        return (self._value >> (self._bits - end)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def skip(self, n: int) -> None:
        self.u(n)

    def ue(self) -> int:
        leading_zeros = 0
        while self.u(1) == 0:
            leading_zeros += 1
            if leading_zeros > 31:
                raise DataLoss("parameter set has an exp-Golomb code longer than 32 bits")
        return (1 << leading_zeros) - 1 + self.u(leading_zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def aspect_ratio(reader: BitReader) -> tuple[int, int]:
    """Reads ``aspect_ratio_idc`` (and an extended SAR) after a set
    ``aspect_ratio_info_present_flag``; the same syntax in H.264 and H.265 VUI."""
    idc = reader.u(8)
    if idc == EXTENDED_SAR:
        h, v = reader.u(16), reader.u(16)
        return (h, v) if h and v else (1, 1)
    return _SAR_TABLE.get(idc, (1, 1))


@dataclass(frozen=True, slots=True)
class PictureFormat:
    """The fields of a sequence parameter set, H.264 or H.265, that make a sample entry
    (each codec's ``Sps`` adds its own and the ``rfc6381_codec`` string)."""

    chroma_format_idc: int
    bit_depth_luma_minus8: int
    bit_depth_chroma_minus8: int
    width: int  # displayed, after cropping
    height: int
    pixel_aspect: tuple[int, int]

    @property
    def rfc6381_codec(self) -> str:
        raise NotImplementedError

    def sample_entry(self, codec_box: bytes) -> VideoSampleEntry:
        """The ``VideoSampleEntry`` of pictures of this format, with ``codec_box`` (the
        complete ``avcC``/``hvcC`` box) as its data."""
        h_spacing, v_spacing = self.pixel_aspect
        return VideoSampleEntry(
            width=self.width,
            height=self.height,
            rfc6381_codec=self.rfc6381_codec,
            data=codec_box,
            pasp_h_spacing=h_spacing,
            pasp_v_spacing=v_spacing,
        )
