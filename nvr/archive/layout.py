"""What the objects of an archive are called and what the description object says.

Each archived recording is two objects under the archive's prefix:

- ``{prefix}{camera uuid}/{stream type}/{recording id:010d}.sample``: the sample file's
  bytes, exactly (docs/design.md, "On-disk formats");
- ``{prefix}{camera uuid}/{stream type}/{recording id:010d}.json``: its description
  (``describe``), written after the sample object, so a description always names an
  object that is complete. With it the archive is self-describing without the database:
  the recording's row (times, counts, flags, the cumulative figures, end reason), its
  ``video_index`` and sample entry (base64), the SHA-256 of the sample bytes, the camera
  and stream it belongs to and the database and open that wrote it.

Zero-padded ids make a listing of a stream's keys its recordings in order.

``parse`` reads a description back (``nvr archive restore``). ``openId`` (the id of the
open that wrote the recording in its database: part of every ETag) was added to the row
after the first descriptions were written; without it a restored recording plays with
the same bytes but other ETags.

What belongs here: key names and the description's content (format ``1``). Not: I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from nvr.base import errors
from nvr.db.raw import split_composite_id
from nvr.db.recording import VideoSampleEntry
from nvr.db.types import ListedRecording

FORMAT = 1


def stream_prefix(prefix: str, camera_uuid: uuidlib.UUID, stream_type: str) -> str:
    return f"{prefix}{camera_uuid}/{stream_type}/"


def recording_keys(
    prefix: str, camera_uuid: uuidlib.UUID, stream_type: str, composite_id: int
) -> tuple[str, str]:
    """(sample object key, description object key)."""
    rid = split_composite_id(composite_id)[1]
    base = f"{stream_prefix(prefix, camera_uuid, stream_type)}{rid:010d}"
    return base + ".sample", base + ".json"


def describe(
    *,
    rec: ListedRecording,
    sha256: bytes,
    video_index: bytes,
    entry: VideoSampleEntry,
    db_uuid: uuidlib.UUID,
    open_uuid: uuidlib.UUID | None,
    camera_uuid: uuidlib.UUID,
    camera_name: str,
    stream_type: str,
) -> bytes:
    """The description object's bytes (UTF-8 JSON, keys sorted)."""
    stream_id, recording_id = split_composite_id(rec.composite_id)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "databaseUuid": str(db_uuid),
        "openUuid": None if open_uuid is None else str(open_uuid),
        "camera": {"uuid": str(camera_uuid), "shortName": camera_name},
        "stream": {"type": stream_type, "id": stream_id},
        "compositeId": rec.composite_id,
        "recordingId": recording_id,
        "row": {
            "startTime90k": rec.start_time_90k,
            "wallDuration90k": rec.wall_duration_90k,
            "mediaDuration90k": rec.media_duration_90k,
            "videoSamples": rec.video_samples,
            "videoSyncSamples": rec.video_sync_samples,
            "sampleFileBytes": rec.sample_file_bytes,
            "runOffset": rec.run_offset,
            "flags": rec.flags,
            "prevMediaDuration90k": rec.prev_media_duration_90k,
            "prevRuns": rec.prev_runs,
            "endReason": rec.end_reason,
            "openId": rec.open_id,
        },
        "sampleFileSha256": sha256.hex(),
        "videoIndex": base64.b64encode(video_index).decode(),
        "sampleEntry": {
            "width": entry.width,
            "height": entry.height,
            "rfc6381Codec": entry.rfc6381_codec,
            "data": base64.b64encode(entry.data).decode(),
            "paspHSpacing": entry.pasp_h_spacing,
            "paspVSpacing": entry.pasp_v_spacing,
        },
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Description:
    """A description object, read back (``parse``)."""

    key: str
    camera_uuid: uuidlib.UUID
    camera_name: str
    stream_type: str
    stream_id: int
    composite_id: int
    #: ``recording``'s columns (as ``nvr.db.raw_archive.ROW_COLUMN_NAMES`` but the summary)
    row: dict[str, Any]
    sha256: bytes
    video_index: bytes
    entry: VideoSampleEntry


def parse(key: str, data: bytes) -> Description:
    """A description object's content (``DataLoss`` if it is not one nvr wrote)."""
    try:
        d = json.loads(data)
        if d.get("format") != FORMAT:
            raise errors.DataLoss(f"{key}: description format {d.get('format')!r}, not {FORMAT}")
        r, e = d["row"], d["sampleEntry"]
        cid = int(d["compositeId"])
        stream_id = int(d["stream"]["id"])
        if split_composite_id(cid)[0] != stream_id:
            raise errors.DataLoss(f"{key}: composite id {cid} is not of stream {stream_id}")
        wall, media = int(r["wallDuration90k"]), int(r["mediaDuration90k"])
        row = {
            "composite_id": cid,
            "open_id": int(r.get("openId", 0)),
            "stream_id": stream_id,
            "run_offset": int(r["runOffset"]),
            "flags": int(r["flags"]),
            "sample_file_bytes": int(r["sampleFileBytes"]),
            "start_time_90k": int(r["startTime90k"]),
            "prev_media_duration_90k": int(r["prevMediaDuration90k"]),
            "prev_runs": int(r["prevRuns"]),
            "wall_duration_90k": wall,
            "media_duration_delta_90k": media - wall,
            "video_samples": int(r["videoSamples"]),
            "video_sync_samples": int(r["videoSyncSamples"]),
            "end_reason": r.get("endReason"),
        }
        return Description(
            key=key,
            camera_uuid=uuidlib.UUID(d["camera"]["uuid"]),
            camera_name=str(d["camera"]["shortName"]),
            stream_type=str(d["stream"]["type"]),
            stream_id=stream_id,
            composite_id=cid,
            row=row,
            sha256=bytes.fromhex(d["sampleFileSha256"]),
            video_index=base64.b64decode(d["videoIndex"], validate=True),
            entry=VideoSampleEntry(
                int(e["width"]), int(e["height"]), str(e["rfc6381Codec"]),
                base64.b64decode(e["data"], validate=True),
                int(e["paspHSpacing"]), int(e["paspVSpacing"]),
            ),
        )
    except errors.NvrError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as ex:
        raise errors.DataLoss(f"{key}: not a description nvr wrote ({type(ex).__name__}: {ex})"
                              ) from ex
