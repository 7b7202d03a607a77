"""H.264 bitstream parsing, plus the NAL framing and bit reading H.265 shares.

Pure byte handling (no ``av``): splitting Annex B streams (3- and 4-byte start codes) and
length-prefixed data into NAL units and writing them back length-prefixed; an exp-Golomb
``BitReader`` over an RBSP (emulation-prevention bytes removed); the H.264 sequence
parameter set fields nvr needs (profile, level, chroma format, bit depths, displayed size
after frame cropping, pixel aspect ratio from the VUI); the ``avcC`` box
(ISO/IEC 14496-15 §5.3.3) and the RFC 6381 codec string ``avc1.PPCCLL``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from nvr.base.errors import DataLoss
from nvr.db.recording import VideoSampleEntry
from nvr.ingest.source import FrameBytes

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

#: NAL unit types that go into the sample entry or carry no picture data, so frames drop them
PARAMETER_AND_DELIMITER_TYPES = frozenset({NAL_SPS, NAL_PPS, NAL_AUD})

#: profiles whose SPS carries chroma format, bit depths and scaling matrices (§7.3.2.1.1);
#: their avcC record gets the chroma/bit-depth extension (ISO/IEC 14496-15 §5.3.3.1 lists
#: 100, 110, 122, 144; like FFmpeg, nvr writes it for every profile with these SPS fields)
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})

#: Table E-1: sample aspect ratios by aspect_ratio_idc (255 = explicit SAR in the VUI)
_SAR_TABLE = {
    1: (1, 1), 2: (12, 11), 3: (10, 11), 4: (16, 11), 5: (40, 33), 6: (24, 11),
    7: (20, 11), 8: (32, 11), 9: (80, 33), 10: (18, 11), 11: (15, 11), 12: (64, 33),
    13: (160, 99), 14: (4, 3), 15: (3, 2), 16: (2, 1),
}  # fmt: skip
EXTENDED_SAR = 255


def is_annex_b(data: bytes) -> bool:
    """True when ``data`` starts with a 3- or 4-byte start code."""
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def split_annex_b(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes.

    Zero bytes before a start code (the 4-byte form, trailing_zero_8bits) are not part of
    the NAL unit: by the spec a NAL unit never ends in a zero byte.
    """
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        nal = data[begin : len(data) if end < 0 else end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = end
    return nals


@dataclass(slots=True)
class SplitFrame:
    """A frame's NAL units after dropping some: ``payload`` is the kept ones, 4-byte
    length-prefixed (the ``mdat`` form); ``kept_types`` their types in order; ``dropped``
    the others (parameter sets, delimiters), for the caller to look at."""

    payload: FrameBytes
    kept_types: list[int]
    dropped: list[bytes]


def split_annex_b_frame(
    data: FrameBytes, nal_type: Callable[[FrameBytes], int],
    drop_types: frozenset[int],
) -> SplitFrame:
    """An Annex B frame as a ``SplitFrame``, leaving out NAL units whose ``nal_type`` is in
    ``drop_types``.

    This runs for every frame a camera sends, so it copies as little as it can: ``data``
    is copied once into a ``bytearray`` and, in the usual case (every NAL unit behind a
    4-byte start code, the dropped ones first, as FFmpeg's RTP depacketizer and encoders
    write them), each start code is overwritten with its unit's length and the dropped
    prefix cut off, in place. Other layouts are rebuilt by joining the kept units.
    """
    buf = bytearray(data)
    find = buf.find
    units: list[tuple[int, int, int]] = []  # (start code's first byte, unit begin, unit end)
    code = find(b"\x00\x00\x01")
    while code >= 0:
        begin = code + 3
        nxt = find(b"\x00\x00\x01", begin)
        end = len(buf) if nxt < 0 else nxt
        while end > begin and buf[end - 1] == 0:  # trailing_zero_8bits, a 4-byte code's 00
            end -= 1
        if end > begin:
            units.append((code - 1 if code > 0 and buf[code - 1] == 0 else code, begin, end))
        code = nxt
    kept_types: list[int] = []
    dropped: list[bytes] = []
    first_kept = -1
    in_place = True  # every start code is 4 bytes and directly follows the previous unit
    prev_end = 0
    for i, (start, begin, end) in enumerate(units):
        kind = nal_type(buf[begin : begin + 1])
        if kind in drop_types:
            dropped.append(bytes(buf[begin:end]))
            in_place = in_place and first_kept < 0
        else:
            kept_types.append(kind)
            if first_kept < 0:
                first_kept = i
        in_place = in_place and begin - start == 4 and start == prev_end
        prev_end = end
    if first_kept < 0:
        return SplitFrame(b"", kept_types, dropped)
    if not in_place:
        kept = [bytes(buf[b:e]) for s, b, e in units if nal_type(buf[b : b + 1]) not in drop_types]
        return SplitFrame(to_length_prefixed(kept), kept_types, dropped)
    for start, begin, end in units[first_kept:]:
        buf[start:begin] = (end - begin).to_bytes(4, "big")
    del buf[prev_end:]
    del buf[: units[first_kept][0]]
    return SplitFrame(buf, kept_types, dropped)


def split_length_prefixed(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of ``length_size``-byte big-endian length-prefixed data.

    Raises ``DataLoss`` when a length runs past the end of ``data``.
    """
    nals: list[bytes] = []
    pos = 0
    while pos < len(data):
        header_end = pos + length_size
        length = int.from_bytes(data[pos:header_end], "big")
        end = header_end + length
        if header_end > len(data) or end > len(data):
            raise DataLoss(
                f"length-prefixed NAL unit at byte {pos} claims {length} bytes, "
                f"only {len(data) - header_end} left"
            )
        nals.append(data[header_end:end])
        pos = end
    return nals


def split_length_prefixed_frame(
    data: bytes, length_size: int, nal_type: Callable[[FrameBytes], int],
    drop_types: frozenset[int],
) -> SplitFrame:
    """A length-prefixed frame as a ``SplitFrame`` (see ``split_annex_b_frame``); ``data``
    itself is the payload when it is 4-byte prefixed and nothing is dropped."""
    nals = split_length_prefixed(data, length_size)
    types = [nal_type(nal) for nal in nals]
    kept = [nal for nal, kind in zip(nals, types, strict=True) if kind not in drop_types]
    kept_types = [kind for kind in types if kind not in drop_types]
    dropped = [nal for nal, kind in zip(nals, types, strict=True) if kind in drop_types]
    if length_size == 4 and not dropped:
        return SplitFrame(data, kept_types, dropped)
    return SplitFrame(to_length_prefixed(kept) if kept else b"", kept_types, dropped)


def to_length_prefixed(nals: list[bytes]) -> bytes:
    """NAL units joined with 4-byte big-endian length prefixes (the ``mdat`` form)."""
    return b"".join(len(nal).to_bytes(4, "big") + nal for nal in nals)


def nal_type(nal: FrameBytes) -> int:
    """The H.264 ``nal_unit_type`` of a NAL unit (only its first byte is read)."""
    return nal[0] & 0x1F


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
class Sps:
    """The fields of an H.264 sequence parameter set nvr uses."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma_minus8: int
    bit_depth_chroma_minus8: int
    width: int
    height: int
    pixel_aspect: tuple[int, int]

    @property
    def rfc6381_codec(self) -> str:
        return f"avc1.{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


def parse_sps(nal: bytes) -> Sps:
    """Parses an SPS NAL unit (header byte included). Raises ``DataLoss`` if malformed."""
    if not nal or nal_type(nal) != NAL_SPS:
        raise DataLoss("not an H.264 SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[1:]))
    profile_idc, constraint_flags, level_idc = r.u(8), r.u(8), r.u(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc, separate_colour_plane = 1, False
    bit_depth_luma_minus8 = bit_depth_chroma_minus8 = 0
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma_minus8, bit_depth_chroma_minus8 = r.ue(), r.ue()
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            _skip_scaling_matrix(r, 12 if chroma_format_idc == 3 else 8)
    r.ue()  # log2_max_frame_num_minus4
    _skip_pic_order_cnt(r)
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs, height_map_units = r.ue() + 1, r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if r.flag():  # frame_cropping_flag
        unit_x, unit_y = _crop_units(chroma_format_idc, separate_colour_plane, frame_mbs_only)
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise DataLoss(f"H.264 SPS crops the picture to {width}x{height}")
    pixel_aspect = (1, 1)
    if r.flag() and r.flag():  # vui_parameters_present_flag, aspect_ratio_info_present_flag
        pixel_aspect = aspect_ratio(r)
    return Sps(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma_minus8=bit_depth_luma_minus8,
        bit_depth_chroma_minus8=bit_depth_chroma_minus8,
        width=width,
        height=height,
        pixel_aspect=pixel_aspect,
    )


def _skip_scaling_matrix(r: BitReader, lists: int) -> None:
    for i in range(lists):
        if r.flag():  # seq_scaling_list_present_flag[i]
            _skip_scaling_list(r, 16 if i < 6 else 64)


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last_scale + r.se() + 256) % 256
        last_scale = next_scale or last_scale


def _skip_pic_order_cnt(r: BitReader) -> None:
    pic_order_cnt_type = r.ue()
    if pic_order_cnt_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        r.skip(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        for _ in range(r.ue()):  # num_ref_frames_in_pic_order_cnt_cycle
            r.se()


def _crop_units(
    chroma_format_idc: int, separate_colour_plane: bool, frame_mbs_only: bool
) -> tuple[int, int]:
    """CropUnitX and CropUnitY (equations 7-19 to 7-22)."""
    field_factor = 1 if frame_mbs_only else 2
    if chroma_format_idc == 0 or separate_colour_plane:
        return 1, field_factor
    sub_width = 1 if chroma_format_idc == 3 else 2
    sub_height = 2 if chroma_format_idc == 1 else 1
    return sub_width, sub_height * field_factor


def avcc_box(sps: bytes, pps: bytes) -> bytes:
    """The complete ``avcC`` box (8-byte header included) for one SPS and one PPS."""
    info = parse_sps(sps)
    record = bytearray(
        [1, info.profile_idc, info.constraint_flags, info.level_idc, 0xFC | 3, 0xE0 | 1]
    )
    record += struct.pack(">H", len(sps)) + sps
    record += b"\x01" + struct.pack(">H", len(pps)) + pps
    if info.profile_idc in _HIGH_PROFILES:
        record += bytes(
            [
                0xFC | info.chroma_format_idc,
                0xF8 | info.bit_depth_luma_minus8,
                0xF8 | info.bit_depth_chroma_minus8,
                0,  # numOfSequenceParameterSetExt
            ]
        )
    return struct.pack(">I", 8 + len(record)) + b"avcC" + record


def sample_entry(sps: bytes, pps: bytes) -> VideoSampleEntry:
    """The ``VideoSampleEntry`` for an H.264 stream with these parameter sets."""
    info = parse_sps(sps)
    h_spacing, v_spacing = info.pixel_aspect
    return VideoSampleEntry(
        width=info.width,
        height=info.height,
        rfc6381_codec=info.rfc6381_codec,
        data=avcc_box(sps, pps),
        pasp_h_spacing=h_spacing,
        pasp_v_spacing=v_spacing,
    )


def parse_avcc_record(record: bytes) -> tuple[list[bytes], list[bytes], int]:
    """SPS list, PPS list and NAL length size of an ``AVCDecoderConfigurationRecord``
    (the box payload, e.g. an mp4 stream's codec extradata)."""
    try:
        length_size = (record[4] & 3) + 1
        sps_list, pos = _read_counted_nals(record, 6, record[5] & 0x1F)
        pps_list, pos = _read_counted_nals(record, pos + 1, record[pos])
    except IndexError:
        raise DataLoss("truncated avcC record") from None
    return sps_list, pps_list, length_size


def _read_counted_nals(record: bytes, pos: int, count: int) -> tuple[list[bytes], int]:
    nals = []
    for _ in range(count):
        length = int.from_bytes(record[pos : pos + 2], "big")
        nal = record[pos + 2 : pos + 2 + length]
        if len(nal) != length:
            raise IndexError
        nals.append(nal)
        pos += 2 + length
    return nals, pos
