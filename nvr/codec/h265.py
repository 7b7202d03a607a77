"""H.265 (HEVC) parameter sets: the SPS fields nvr needs, the ``hvcC`` box, the codec string.

Pure byte handling (no ``av``); NAL framing is ``nvr.codec.nal``'s, the bit reader
``nvr.codec.sps``'s. The SPS parser reads the profile/tier/level, chroma format,
bit depths, the displayed size after the conformance window, and walks the rest of the SPS
(scaling lists, short-term reference picture sets, long-term pictures) to reach the VUI's
pixel aspect ratio. The ``hvcC`` box
follows ISO/IEC 14496-15 §8.3.3; the codec string ``hvc1.<profile>.<compat>.<tier><level>
.<constraints>`` follows its Annex E.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from nvr.base.errors import DataLoss
from nvr.codec.nal import FrameBytes
from nvr.codec.sps import BitReader, PictureFormat, aspect_ratio, unescape_rbsp
from nvr.db.recording import VideoSampleEntry

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35

#: NAL unit types that go into the sample entry or carry no picture data, so frames drop them
PARAMETER_AND_DELIMITER_TYPES = frozenset({NAL_VPS, NAL_SPS, NAL_PPS, NAL_AUD})

#: BLA, IDR and CRA pictures (and the reserved IRAP types): random access points
KEY_TYPES = frozenset(range(16, 24))

_PROFILE_SPACE_LETTERS = ("", "A", "B", "C")


def nal_type(nal: FrameBytes) -> int:
    """The H.265 ``nal_unit_type`` of a NAL unit (only its first byte is read)."""
    return (nal[0] >> 1) & 0x3F


@dataclass(frozen=True, slots=True)
class ProfileTierLevel:
    """The general profile_tier_level fields (§7.3.3), as copied into ``hvcC``."""

    profile_space: int
    tier_flag: int
    profile_idc: int
    compatibility_flags: int  # 32 bits, flag[0] in the most significant bit
    constraint_flags: int  # 48 bits
    level_idc: int

    @property
    def codec_suffix(self) -> str:
        """Everything after ``hvc1.`` in the RFC 6381 codec string (ISO/IEC 14496-15 E.3)."""
        compat = int(f"{self.compatibility_flags:032b}"[::-1], 2)
        parts = [
            f"{_PROFILE_SPACE_LETTERS[self.profile_space]}{self.profile_idc}",
            f"{compat:X}",
            f"{'H' if self.tier_flag else 'L'}{self.level_idc}",
        ]
        constraint_bytes = self.constraint_flags.to_bytes(6, "big").rstrip(b"\x00")
        parts.extend(f"{b:02X}" for b in constraint_bytes)
        return ".".join(parts)


@dataclass(frozen=True, slots=True)
class Sps(PictureFormat):
    """The fields of an H.265 sequence parameter set nvr uses."""

    ptl: ProfileTierLevel
    max_sub_layers: int
    temporal_id_nesting: bool

    @property
    def rfc6381_codec(self) -> str:
        return f"hvc1.{self.ptl.codec_suffix}"


def parse_sps(nal: bytes) -> Sps:
    """Parses an SPS NAL unit (2-byte header included). Raises ``DataLoss`` if malformed."""
    if len(nal) < 3 or nal_type(nal) != NAL_SPS:
        raise DataLoss("not an H.265 SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[2:]))
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    temporal_id_nesting = r.flag()
    ptl = _profile_tier_level(r, max_sub_layers_minus1)
    r.ue()  # sps_seq_parameter_set_id
    chroma_format_idc = r.ue()
    separate_colour_plane = chroma_format_idc == 3 and r.flag()
    width, height = r.ue(), r.ue()
    if r.flag():  # conformance_window_flag
        unit_x, unit_y = _crop_units(chroma_format_idc, separate_colour_plane)
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise DataLoss(f"H.265 SPS crops the picture to {width}x{height}")
    bit_depth_luma_minus8, bit_depth_chroma_minus8 = r.ue(), r.ue()
    log2_max_poc_lsb = r.ue() + 4
    return Sps(
        ptl=ptl,
        max_sub_layers=max_sub_layers_minus1 + 1,
        temporal_id_nesting=temporal_id_nesting,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma_minus8=bit_depth_luma_minus8,
        bit_depth_chroma_minus8=bit_depth_chroma_minus8,
        width=width,
        height=height,
        pixel_aspect=_pixel_aspect(r, max_sub_layers_minus1, log2_max_poc_lsb),
    )


def _profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> ProfileTierLevel:
    profile_space, tier_flag, profile_idc = r.u(2), r.u(1), r.u(5)
    compatibility_flags = r.u(32)
    constraint_flags = r.u(48)
    level_idc = r.u(8)
    present = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        r.skip(88 * profile_present + 8 * level_present)
    return ProfileTierLevel(
        profile_space, tier_flag, profile_idc, compatibility_flags, constraint_flags, level_idc
    )


def _crop_units(chroma_format_idc: int, separate_colour_plane: bool) -> tuple[int, int]:
    """SubWidthC and SubHeightC (Table 6-1): the conformance window's units."""
    if chroma_format_idc == 0 or separate_colour_plane or chroma_format_idc == 3:
        return 1, 1
    return 2, 2 if chroma_format_idc == 1 else 1


def _pixel_aspect(
    r: BitReader, max_sub_layers_minus1: int, log2_max_poc_lsb: int
) -> tuple[int, int]:
    """Walks the SPS from sps_sub_layer_ordering_info_present_flag to the VUI's aspect ratio."""
    first_layer = 0 if r.flag() else max_sub_layers_minus1  # ordering info for all layers?
    for _ in range(3 * (max_sub_layers_minus1 + 1 - first_layer)):
        r.ue()  # max_dec_pic_buffering, max_num_reorder_pics, max_latency_increase
    for _ in range(6):  # coding/transform block sizes, transform hierarchy depths
        r.ue()
    if r.flag() and r.flag():  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _skip_scaling_list_data(r)
    r.skip(2)  # amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.flag():  # pcm_enabled_flag
        r.skip(8)  # pcm sample bit depths
        r.ue()  # log2_min_pcm_luma_coding_block_size_minus3
        r.ue()  # log2_diff_max_min_pcm_luma_coding_block_size
        r.skip(1)  # pcm_loop_filter_disabled_flag
    _skip_short_term_ref_pic_sets(r)
    if r.flag():  # long_term_ref_pics_present_flag
        for _ in range(r.ue()):
            r.skip(log2_max_poc_lsb + 1)  # lt_ref_pic_poc_lsb_sps, used_by_curr_pic_lt_sps_flag
    r.skip(2)  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if r.flag() and r.flag():  # vui_parameters_present_flag, aspect_ratio_info_present_flag
        return aspect_ratio(r)
    return (1, 1)


def _skip_scaling_list_data(r: BitReader) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not r.flag():  # scaling_list_pred_mode_flag
                r.ue()  # scaling_list_pred_matrix_id_delta
                continue
            if size_id > 1:
                r.se()  # scaling_list_dc_coef_minus8
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                r.se()  # scaling_list_delta_coef


def _skip_short_term_ref_pic_sets(r: BitReader) -> None:
    """Reads num_short_term_ref_pic_sets st_ref_pic_set()s (§7.3.7), tracking NumDeltaPocs."""
    num_delta_pocs: list[int] = []
    for idx in range(r.ue()):
        if idx > 0 and r.flag():  # inter_ref_pic_set_prediction_flag
            r.skip(1)  # delta_rps_sign
            r.ue()  # abs_delta_rps_minus1
            used = 0
            for _ in range(num_delta_pocs[idx - 1] + 1):
                if r.flag() or r.flag():  # used_by_curr_pic_flag, else use_delta_flag
                    used += 1
            num_delta_pocs.append(used)
        else:
            negative, positive = r.ue(), r.ue()
            for _ in range(negative + positive):
                r.ue()  # delta_poc_sX_minus1
                r.skip(1)  # used_by_curr_pic_sX_flag
            num_delta_pocs.append(negative + positive)


def hvcc_box(vps: bytes, sps: bytes, pps: bytes) -> bytes:
    """The complete ``hvcC`` box (8-byte header included) for one VPS, SPS and PPS."""
    info = parse_sps(sps)
    ptl = info.ptl
    record = bytearray([1, ptl.profile_space << 6 | ptl.tier_flag << 5 | ptl.profile_idc])
    record += struct.pack(">I", ptl.compatibility_flags)
    record += ptl.constraint_flags.to_bytes(6, "big")
    record += bytes([ptl.level_idc])
    record += struct.pack(">H", 0xF000)  # min_spatial_segmentation_idc = 0 (unknown)
    record += bytes(
        [
            0xFC,  # parallelismType = 0 (unknown)
            0xFC | info.chroma_format_idc,
            0xF8 | info.bit_depth_luma_minus8,
            0xF8 | info.bit_depth_chroma_minus8,
        ]
    )
    record += struct.pack(">H", 0)  # avgFrameRate unknown
    record += bytes(
        [(info.max_sub_layers & 7) << 3 | info.temporal_id_nesting << 2 | 3]  # 4-byte lengths
    )
    record += bytes([3])  # numOfArrays
    for kind, nal in ((NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)):
        record += bytes([0x80 | kind]) + struct.pack(">HH", 1, len(nal)) + nal
    return struct.pack(">I", 8 + len(record)) + b"hvcC" + record


def sample_entry(vps: bytes, sps: bytes, pps: bytes) -> VideoSampleEntry:
    """The ``VideoSampleEntry`` for an H.265 stream with these parameter sets."""
    return parse_sps(sps).sample_entry(hvcc_box(vps, sps, pps))


def parse_hvcc_record(record: bytes) -> tuple[dict[int, bytes], int]:
    """The first NAL unit of each type and the NAL length size of an
    ``HEVCDecoderConfigurationRecord`` (the box payload, e.g. mp4 codec extradata)."""
    nals: dict[int, bytes] = {}
    try:
        length_size = (record[21] & 3) + 1
        pos = 23
        for _ in range(record[22]):
            kind = record[pos] & 0x3F
            count = int.from_bytes(record[pos + 1 : pos + 3], "big")
            pos += 3
            for _ in range(count):
                length = int.from_bytes(record[pos : pos + 2], "big")
                nal = record[pos + 2 : pos + 2 + length]
                if len(nal) != length:
                    raise IndexError
                nals.setdefault(kind, nal)
                pos += 2 + length
    except IndexError:
        raise DataLoss("truncated hvcC record") from None
    return nals, length_size
