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

What belongs here: key names and the description's content (format ``1``). Not: I/O.
"""

from __future__ import annotations

import base64
import json
import uuid as uuidlib
from typing import Any

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
