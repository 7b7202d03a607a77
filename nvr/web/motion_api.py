"""Motion routes, nvr's extensions of Moonfire's API (docs/api.md, "Extensions"): motion search
over stored summaries, its ``.txt`` debug twin, and the per-day/per-hour motion totals
that ``GET /api/`` shows per camera (``motion_json``).

Every route reads only the stored summaries (``recording_motion``), never video. Bounds:
a request covers at most ``MAX_RANGE`` of time (a client pages through longer ones with
``nextEndTime90k``), returns at most ``MAX_LIMIT`` spans, and the search's arithmetic runs
in a worker thread so a month's search does not hold up the event loop. A search reads back
from its end only as far as its page needs (``nvr.motion.search.search_newest``), and only
the summaries of recordings whose stored union of moved cells meets the region.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from quart import Blueprint, Response, request

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.types import MAX_RECORDING_WALL_DURATION, Camera, Stream
from nvr.motion.detector import CELLS
from nvr.motion.search import search_newest
from nvr.motion.summary import ENTRY, bitmap_to_cells, cells_to_bitmap
from nvr.web.context import MAX_TIME, camera_by_uuid, ctx, int_arg, stream_of, text_response

blueprint = Blueprint("motion", __name__)

MAX_RANGE = 40 * 24 * 3600 * UNITS_PER_SEC
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
#: recordings the .txt debug output lists at most
MAX_TXT_RECORDINGS = 200
_FRACTION = re.compile(r"(0|1)?(\.[0-9]{1,6})?", re.ASCII)
_HEX = re.compile(f"[0-9a-fA-F]{{{CELLS // 4}}}", re.ASCII)


def motion_stream(cam: Camera) -> Stream:
    """The stream whose summaries a camera's motion routes read: the configured one, or
    (motion off now) the sub stream if there is one, else the main."""
    type_ = request.args.get("stream") or cam.config.motion
    if type_ is None:
        type_ = "sub" if "sub" in cam.streams else "main"
    return stream_of(cam, type_)


def _range() -> tuple[int, int]:
    if "startTime90k" not in request.args or "endTime90k" not in request.args:
        raise errors.InvalidArgument("startTime90k and endTime90k are both required")
    start = int_arg("startTime90k", 0)
    end = int_arg("endTime90k", MAX_TIME)
    if end <= start:
        raise errors.InvalidArgument("endTime90k must be after startTime90k")
    if end - start > MAX_RANGE:
        raise errors.InvalidArgument("the time range must be at most 40 days: page through it")
    return start, end


def _fraction() -> float:
    text = request.args.get("minFraction", "0")
    if not text or _FRACTION.fullmatch(text) is None or text == ".":
        raise errors.InvalidArgument("minFraction must be a number from 0 to 1")
    value = float(text)
    if value > 1:
        raise errors.InvalidArgument("minFraction must be a number from 0 to 1")
    return value


def _region() -> np.ndarray[Any, np.dtype[np.bool_]]:
    text = request.args.get("cells")
    if text is None:
        return np.ones(CELLS, dtype=np.bool_)
    if _HEX.fullmatch(text) is None:
        raise errors.InvalidArgument(
            f"cells must be {CELLS // 4} hex digits (a bitmap of the 16x16 grid)"
        )
    region = bitmap_to_cells(bytes.fromhex(text))
    if not region.any():
        raise errors.InvalidArgument("cells must name at least one cell")
    return region


@blueprint.get("/api/cameras/<camera_uuid>/motion")
async def motion_search(camera_uuid: str) -> dict[str, Any]:
    cam = camera_by_uuid(camera_uuid)
    stream = motion_stream(cam)
    start, end = _range()
    region = _region()
    min_fraction = _fraction()
    min_duration = int_arg("minDuration90k", 0, maximum=MAX_RANGE)
    limit = int_arg("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    db, bitmap = ctx().db, cells_to_bitmap(region)
    spans = await search_newest(
        lambda lo, hi: db.motion_search_rows(stream.id, bitmap, lo, hi, start), run_blocking,
        region, start=start, end=end, min_fraction=min_fraction, min_duration=min_duration,
        limit=limit + 1, max_wall=MAX_RECORDING_WALL_DURATION)
    out: dict[str, Any] = {
        "stream": stream.type,
        "spans": [
            {"startTime90k": s.start_90k, "endTime90k": s.end_90k,
             "recordingIds": list(s.recording_ids), "peak": round(s.peak, 4)}
            for s in spans[:limit]
        ],
    }
    if len(spans) > limit:
        out["nextEndTime90k"] = spans[limit - 1].start_90k
    return out


@blueprint.get("/api/cameras/<camera_uuid>/motion.txt")
async def motion_txt(camera_uuid: str) -> Response:
    cam = camera_by_uuid(camera_uuid)
    stream = motion_stream(cam)
    start, end = _range()
    rows = ctx().db.motion_debug_rows(stream.id, start, end, MAX_TXT_RECORDINGS + 1)
    lines = [f"camera {cam.short_name} stream {stream.type}: {min(len(rows), MAX_TXT_RECORDINGS)}"
             " analysed recordings"]
    for cid, rstart, wall, frames, skipped, seconds, entries, global_ in rows[:MAX_TXT_RECORDINGS]:
        lines.append(
            f"recording {cid & 0xFFFFFFFF} start {rstart} wall {wall}: {frames} pictures, "
            f"{skipped} frames skipped, {seconds} seconds with motion"
        )
        arr = np.frombuffer(entries, dtype=ENTRY)
        for second in np.unique(arr["second"]):
            these = arr[arr["second"] == second]
            cells = " ".join(f"{int(c)}:{int(v)}" for c, v in zip(
                these["cell"], these["level"], strict=True))
            lines.append(f"  +{int(second)}s {cells}")
        for second in np.frombuffer(global_, dtype="<u2"):
            lines.append(f"  +{int(second)}s global change")
    if len(rows) > MAX_TXT_RECORDINGS:
        lines.append(f"(more: ask again from startTime90k={rows[-1][1]})")
    return text_response(200, "\n".join(lines))


def motion_json(cam: Camera) -> dict[str, Any] | None:
    """A camera's motion settings and per-day totals for ``GET /api/`` (``days=true``):
    None for a camera never analysed."""
    db = ctx().db
    cfg = cam.config
    totals: dict[str, Any] = {}
    for type_ in ("sub", "main"):
        sid = cam.streams.get(type_)
        days = {} if sid is None else db.motion_days(sid)
        if days:
            totals = {
                day: {"motion90k": seconds * UNITS_PER_SEC,
                      "hours": {str(h): s * UNITS_PER_SEC for h, s in hours.items()}}
                for day, (seconds, hours) in days.items()
            }
            break
    if cfg.motion is None and not totals:
        return None
    return {"stream": cfg.motion, "sensitivity": cfg.motion_sensitivity or 5,
            "days": totals}
