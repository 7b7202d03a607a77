"""H.264 parameter sets: the SPS fields nvr needs, the ``avcC`` box, the codec string.

Pure byte handling (no ``av``): the H.264 sequence parameter set fields nvr needs (profile,
level, chroma format, bit depths, displayed size after frame cropping, pixel aspect ratio
from the VUI); the ``avcC`` box (ISO/IEC 14496-15 §5.3.3) and the RFC 6381 codec string
``avc1.PPCCLL``; and the NAL unit types a frame drops. NAL framing is ``nvr.codec.nal``'s,
the bit reader ``nvr.codec.sps``'s.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from nvr.base.errors import DataLoss
from nvr.codec.nal import FrameBytes
from nvr.codec.sps import BitReader, PictureFormat, aspect_ratio, unescape_rbsp
from nvr.db.recording import VideoSampleEntry

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


def nal_type(nal: FrameBytes) -> int:
    """The H.264 ``nal_unit_type`` of a NAL unit (only its first byte is read)."""
    return nal[0] & 0x1F


@dataclass(frozen=True, slots=True)
class Sps(PictureFormat):
    """The fields of an H.264 sequence parameter set nvr uses."""

    profile_idc: int
    constraint_flags: int
    level_idc: int

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
    return parse_sps(sps).sample_entry(avcc_box(sps, pps))


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
