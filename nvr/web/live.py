"""Live view: ``GET /api/cameras/<uuid>/<stream>/live.m4s``, a WebSocket.

As Moonfire NVR's API documents it: the socket opens at once; then, while the camera is
connected, one binary message per frame, starting at a key frame. Each message is a
block of HTTP-style headers (``Content-Type`` with the codec, ``X-Recording-Id``
``OPEN_ID.RECORDING_ID``, ``X-Recording-Start``, ``X-Prev-Media-Duration``, ``X-Runs``,
``X-Media-Time-Range``, ``X-Video-Sample-Entry-Id``), a blank line, and a media segment
(``moof`` + ``mdat``) to append after the init segment ``/api/init/<id>.mp4``. The
segment's ``tfdt`` is 0, as Moonfire's server writes it: a client places each message
itself, either at the end of what it has buffered (as Moonfire's UI does) or, like nvr's
UI, by ``X-Recording-Id`` and ``X-Media-Time-Range`` through ``timestampOffset``. The
``mfhd`` sequence numbers count the connection's messages from 1.

Frames come from the ingest frame hub (``nvr.ingest.hub``), never from the database.
A frame whose wall time a committed redaction covers (``Database.hidden``, asked for each
frame as it arrives, so a redaction reaching into the future applies to frames as they
come) is never sent: the viewer resumes at the next key frame after the range. A
viewer that reads slower than the camera sends gets a text message
``{"type": "drop", "frames": N}`` and resumes at the next key frame (as Moonfire's
reference documents it; its server writes ``"dropped"``, and its UI ignores text
messages of a type it does not know). The last frame's duration in each message is an estimate
(the previous frame interval): waiting for the next frame to know it would add a frame
interval of latency; the next message's ``X-Media-Time-Range`` starts at the true time.

When the camera is offline (its session failed; also at once for a viewer who connects
while it is), the viewer gets ``{"type": "offline", "message": ...}`` (why: the stream's
``lastError``, redacted as in ``/api/`` for callers without ``readCameraConfigs``) and the
socket stays open: the frames of the camera's next session follow on it, from a key
frame, as soon as it records again. (An nvr extension; Moonfire's UI ignores text
messages of a type it does not know.)

With ``transcode=h264`` the frames are H.264 made from the camera's (an extension for
browsers that cannot decode its codec): ``nvr.web.transcoding`` says how its messages
differ; over the limit of concurrent transcodes the socket gets an ``error`` message with
``status`` 503.

Errors: as Moonfire's server does, the upgrade is accepted and an error (no session,
no ``viewVideo``, no such camera or stream) is one text message ``{"type": "error",
"message": ...}`` (with nvr's ``status``) before the socket closes
(``nvr.web.context.websocket_error``). Only cross-site attempts are refused before the
upgrade, with ``403`` (``nvr.web.auth``: an ``Origin`` that names neither the ``Host`` nor
an allowed host, or a foreign ``Host`` on a bind that needs no login). Idle pings come
from hypercorn (``websocket_ping_interval``, set by the daemon).
"""

from __future__ import annotations

import json

from quart import Blueprint, websocket

from nvr.base import errors
from nvr.db.types import Stream
from nvr.ingest.hub import LiveFrame
from nvr.mp4.fragment import build_fragment
from nvr.web.api import Redactor
from nvr.web.auth import caller
from nvr.web.context import WebContext, camera_by_uuid, ctx, stream_of, websocket_error
from nvr.web.transcoding import (
    LIVE_QUEUE_FRAMES,
    live_transcoded,
    transcodes,
    wants_transcode,
)

blueprint = Blueprint("live", __name__)


def message_for(frame: LiveFrame, sequence: int) -> bytes:
    rec = frame.recording
    headers = (
        f'Content-Type: video/mp4; codecs="{rec.sample_entry.rfc6381_codec}"\r\n'
        f"X-Recording-Id: {rec.open_id}.{rec.recording_id}\r\n"
        f"X-Recording-Start: {rec.start_time_90k}\r\n"
        f"X-Prev-Media-Duration: {rec.prev_media_duration_90k}\r\n"
        f"X-Runs: {rec.prev_runs + 1}\r\n"  # prev_runs: runs before its own
        f"X-Media-Time-Range: {frame.media_start}-{frame.media_start + frame.duration}\r\n"
        f"X-Video-Sample-Entry-Id: {rec.video_sample_entry_id}\r\n"
        "\r\n"
    )
    return headers.encode() + build_fragment([frame], sequence)


def redacted(context: WebContext, stream_id: int, frame: LiveFrame) -> bool:
    """Whether a committed redaction covers any of the frame's wall time (its recording's
    start plus its media time: a live recording's rate is not refined yet, and a frame
    interval of slack on either side is below what a redaction range means)."""
    start = frame.recording.start_time_90k + frame.media_start
    return bool(context.db.hidden(stream_id, start, start + max(frame.duration, 1)))


@blueprint.websocket("/api/cameras/<camera_uuid>/<stream_type>/live.m4s")
async def live(camera_uuid: str, stream_type: str) -> None:
    # nvr.web.auth.check_websocket has checked the Host, the Origin and the permission
    context = ctx()
    slot = None
    try:
        stream = stream_of(camera_by_uuid(camera_uuid), stream_type)
        if wants_transcode(websocket.args.get("transcode")):
            slot = transcodes().take("live")
    except errors.NvrError as e:
        await websocket_error(e)
        return
    try:
        await _serve(context, stream, slot is not None)
    finally:
        if slot is not None:
            slot.release()


async def _serve(context: WebContext, stream: Stream, transcode: bool) -> None:
    await websocket.accept()
    redact = None if "readCameraConfigs" in caller().permissions else Redactor(context.db)

    async def offline(why: str) -> None:
        message = why if redact is None else redact(why)
        await websocket.send(json.dumps({"type": "offline", "message": message}))

    sequence = 0
    queue = LIVE_QUEUE_FRAMES if transcode else None
    with context.hub.subscribe(stream.id, max_frames=queue,
                               skip=lambda f: redacted(context, stream.id, f)) as subscription:
        status = context.stream_status(stream.id)
        if status is not None and status.stream.kind == "backoff":
            await offline(status.stream.last_error or "the camera is not connected")
        if transcode:
            assert context.transcodes is not None
            await live_transcoded(subscription, context.transcodes, offline)
            return
        while True:
            dropped, frames = await subscription.get()
            if dropped:
                await websocket.send(json.dumps({"type": "drop", "frames": dropped}))
            for frame in frames:
                sequence += 1
                await websocket.send(message_for(frame, sequence))
            ended = subscription.take_ended()
            if ended is not None:
                await offline(ended)
