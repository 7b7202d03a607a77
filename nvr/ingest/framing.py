"""How a camera's packets become ``Packet``s: pure framing rules, no ``av``, no threads.

- ``CodecRules``/``CODECS``: what differs between H.264 and H.265 (NAL unit types to drop,
  key frame types, parameter set types, how to make a sample entry).
- ``StreamFraming``: one stream's framing state. It turns a packet's bytes (Annex B or
  length-prefixed, as the codec extradata says) into the form nvr stores (length-prefixed
  NAL units without parameter sets or access unit delimiters), decides whether it is a key
  frame from its NAL unit types, and keeps the stream's parameter sets (from the extradata
  and in-band) with the ``VideoSampleEntry`` made from them, shared by identity until they
  change. It refuses what cannot be video (``DataLoss``, which ends the camera's session):
  a NAL unit header with the forbidden bit set, parameter sets that do not parse or are
  implausible (``nvr.codec.sps``), and a key frame whose slice header is malformed or names
  a picture parameter set the camera never sent; so a run never starts, and no sample
  entry is made, from garbage.
- ``PendingFrame``/``RunStart``: the start-of-run rules (docs/design.md,
  "Recording, syncing and retention"), applied to frames in order.

The PyAV demuxer (``nvr.ingest.demuxer``) feeds packets through these; they are tested
without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from nvr.base.errors import DataLoss
from nvr.base.time90k import Duration
from nvr.codec import decoder_config, h264, h265, nal
from nvr.codec.nal import FrameBytes
from nvr.db.recording import VideoSampleEntry
from nvr.ingest.source import Packet


@dataclass(frozen=True, slots=True)
class CodecRules:
    """What differs between H.264 and H.265 when turning packets into ``Packet``s."""

    nal_type: Callable[[FrameBytes], int]
    dropped_types: frozenset[int]
    key_types: frozenset[int]
    #: the parameter set NAL types, in the order ``sample_entry`` takes them
    parameter_types: tuple[int, ...]
    sample_entry: Callable[..., VideoSampleEntry]
    #: the type of the box whose payload is an ``.mp4`` stream's codec extradata
    config_box_type: bytes
    #: a PPS NAL unit's id and the SPS id it names
    pps_ids: Callable[[bytes], tuple[int, int]]
    #: the PPS id a slice NAL unit names (checking the start of its header)
    slice_pps_id: Callable[[FrameBytes], int]

    @property
    def pps_type(self) -> int:
        """The picture parameter set's NAL type (the last of ``parameter_types``)."""
        return self.parameter_types[-1]


#: the rules by FFmpeg codec name
CODECS = {
    "h264": CodecRules(
        h264.nal_type,
        h264.PARAMETER_AND_DELIMITER_TYPES,
        frozenset({h264.NAL_IDR}),
        (h264.NAL_SPS, h264.NAL_PPS),
        h264.sample_entry,
        b"avcC",
        h264.parse_pps_ids,
        h264.slice_pps_id,
    ),
    "hevc": CodecRules(
        h265.nal_type,
        h265.PARAMETER_AND_DELIMITER_TYPES,
        h265.KEY_TYPES,
        (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS),
        h265.sample_entry,
        b"hvcC",
        h265.parse_pps_ids,
        h265.slice_pps_id,
    ),
}


class FramedPacket(NamedTuple):
    """A packet as nvr stores it: its payload, whether it is a key frame, its sample entry."""

    payload: FrameBytes
    is_key: bool
    sample_entry: VideoSampleEntry


class StreamFraming:
    """One stream's framing (see the module docstring).

    ``extradata`` is the codec extradata FFmpeg reports: empty, Annex B parameter sets
    (RTSP's sprop-parameter-sets, raw streams; packets are then Annex B too) or an
    ``avcC``/``hvcC`` record (``.mp4`` files; packets are then length-prefixed with the
    record's NAL length size).
    """

    def __init__(self, rules: CodecRules, extradata: bytes = b"") -> None:
        self.rules = rules
        self._sets: dict[int, bytes] = {}
        #: the ids of every picture parameter set received (a slice must name one)
        self._pps_ids: set[int] = set()
        #: the sample entry of the current parameter sets (None until all are known)
        self.entry: VideoSampleEntry | None = None
        self._length_size = 0  # 0: Annex B
        if not extradata:
            return
        if extradata[0] != 1:
            self._update(nal.split_annex_b(extradata))
        else:
            nals, self._length_size = decoder_config.parameter_sets(
                rules.config_box_type, extradata
            )
            self._update(nals)

    def frame(self, data: FrameBytes) -> FramedPacket | None:
        """The packet ``data`` as a ``FramedPacket``, after taking in any parameter sets it
        carries; None if it carries no picture (or no sample entry is known yet).

        ``data`` may be any buffer (PyAV's packet): an Annex B packet is copied once, in
        place of a start code each unit gets its length (``nal.split_annex_b_frame``)."""
        rules = self.rules
        if self._length_size:
            split = nal.split_length_prefixed_frame(
                bytes(data), self._length_size, rules.nal_type, rules.dropped_types
            )
        else:
            split = nal.split_annex_b_frame(data, rules.nal_type, rules.dropped_types)
        if split.dropped:
            self._update(split.dropped)
        if not split.kept_types or self.entry is None:
            return None
        is_key = not rules.key_types.isdisjoint(split.kept_types)
        if is_key:
            self._check_key_slice(split.payload)
        return FramedPacket(split.payload, is_key, self.entry)

    def _check_key_slice(self, payload: FrameBytes) -> None:
        """Checks the header of a key frame's first key slice (once a GOP: cheap) against
        the parameter sets received."""
        rules, pos = self.rules, 0
        while pos + 4 < len(payload):
            length = int.from_bytes(payload[pos : pos + 4], "big")
            head = payload[pos + 4 : pos + 4 + min(length, 16)]
            if rules.nal_type(head) in rules.key_types:
                pps_id = rules.slice_pps_id(head)
                if pps_id not in self._pps_ids:
                    raise DataLoss(f"key frame names picture parameter set {pps_id}, "
                                   "which the camera never sent")
                return
            pos += 4 + length

    def _update(self, nals: Iterable[bytes]) -> None:
        """Takes in parameter sets; the entry object changes only when they change to
        different values, so consecutive packets share it by identity. Raises
        ``DataLoss`` for parameter sets that do not parse, are implausible or do not
        belong together."""
        changed = False
        for unit in nals:
            kind = self.rules.nal_type(unit)
            if kind in self.rules.parameter_types and self._sets.get(kind) != unit:
                if kind == self.rules.pps_type:
                    self._pps_ids.add(self.rules.pps_ids(unit)[0])
                self._sets[kind] = unit
                changed = True
        if changed and all(t in self._sets for t in self.rules.parameter_types):
            entry = self.rules.sample_entry(*(self._sets[t] for t in self.rules.parameter_types))
            if entry != self.entry:
                self.entry = entry


@dataclass(slots=True)
class PendingFrame:
    """A packet on its way to becoming a ``Packet``: pts may still be unknown."""

    data: FrameBytes
    pts: int | None
    duration: int  # 90k units, 0 when unknown
    is_key: bool
    sample_entry: VideoSampleEntry
    received: float = 0.0  # instrumentation_stamp() when read

    def to_packet(self, pts: int) -> Packet:
        return Packet(self.data, pts, self.is_key, self.sample_entry, self.received)


class RunStart:
    """The start-of-run rules (docs/design.md, "Recording, syncing and retention"), applied to
    frames in order.

    A run starts with a key frame that has a pts. A key frame without pts (PyAV's first
    packet after connecting) gets the next frame's pts minus its own duration (or
    ``frame_interval``); if neither is known it is dropped. Non-key frames before the
    start are dropped. After the start a frame without pts is ``DataLoss``.
    """

    def __init__(self, frame_interval: Duration) -> None:
        self._frame_interval = frame_interval
        self._held: PendingFrame | None = None
        self.started = False

    def admit(self, frame: PendingFrame) -> list[Packet]:
        """The packets ready to emit now that ``frame`` arrived (zero, one or two)."""
        if self.started:
            if frame.pts is None:
                raise DataLoss("packet without a timestamp in the middle of the stream")
            return [frame.to_packet(frame.pts)]
        if frame.pts is None:
            self._held = frame if frame.is_key else None
            return []
        out = []
        held, self._held = self._held, None
        if held is not None:
            duration = held.duration or frame.duration or self._frame_interval
            if duration > 0:
                out.append(held.to_packet(frame.pts - duration))
        if out or frame.is_key:
            out.append(frame.to_packet(frame.pts))
            self.started = True
        return out
