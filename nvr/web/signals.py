"""Signal routes, as Moonfire NVR's ``ref/api.md`` describes them.

``GET /api/signals?startTime90k=&endTime90k=`` (``viewVideo``): each signal's last change
before the start, then every change in ``[start, end)``, as parallel arrays
``signalIds``, ``states``, ``times90k`` by time. At most ``MAX_LIST_CHANGES`` changes in
the range per answer: a longer one ends at an instant and carries the extension
``nvrNextStartTime90k``, the ``startTime90k`` of the next request.

``POST /api/signals`` (``updateSignals``): ``{signalIds, states, start, end}`` with
``start``/``end`` as ``{"base": "now"|"epoch", "rel90k": n}``; each signal is in its
state over ``[start, end)``, then as before (``nvr.db.signals``). Answers
``{"time90k": now}``.

The ``signals`` and ``signalTypes`` of ``GET /api/`` are built here too
(``signals_json``, ``signal_types_json``). Parsing and the one-line reasons for bad
input live here; the rules themselves (sorted ids, known states, spans) in the database.

Per-camera rights (``signal_visible``): a caller limited to some cameras sees, lists and
sets only signals whose cameras are all within the limit; any other signal is answered
as one that does not exist (404), as cameras are.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from nvr.base import errors
from nvr.base.time90k import Time
from nvr.db.database import Database
from nvr.db.signals import MAX_LIST_CHANGES, Signal, SignalType
from nvr.db.stream_summary import day_bounds
from nvr.web import auth
from nvr.web.context import MAX_TIME, camera_limit, ctx, int_arg

blueprint = Blueprint("signals", __name__)

_BODY_KEYS = {"csrf", "signalIds", "states", "start", "end"}


@blueprint.get("/api/signals")
async def list_signals() -> dict[str, Any]:
    start = int_arg("startTime90k", 0)
    end = int_arg("endTime90k", MAX_TIME)
    if end < start:
        raise errors.InvalidArgument("endTime90k must not be before startTime90k")
    db = ctx().db
    got = db.signal_changes(start, end, limit=MAX_LIST_CHANGES)
    keep = [i for i, sid in enumerate(got.signal_ids) if signal_visible(db, db.signals[sid])]
    out: dict[str, Any] = {"signalIds": [got.signal_ids[i] for i in keep],
                           "states": [got.states[i] for i in keep],
                           "times90k": [got.times[i] for i in keep]}  # fmt: skip
    if got.next_start is not None:
        out["nvrNextStartTime90k"] = got.next_start
    return out


@blueprint.post("/api/signals")
async def update_signals() -> dict[str, Any]:
    b = auth.body()
    extra = sorted(set(b) - _BODY_KEYS)
    if extra:
        raise errors.InvalidArgument(f"unknown field {extra[0]!r} in the request body")
    ids = _int_list(b, "signalIds")
    states = _int_list(b, "states")
    now = ctx().clocks.realtime()
    start = _time(b, "start", now)
    end = _time(b, "end", now)
    db = ctx().db
    for sid in ids:
        sig = db.signals.get(sid)
        if sig is not None and not signal_visible(db, sig):
            raise errors.NotFound(f"no signal with id {sid}")
    db.update_signals(ids, states, start, end)
    return {"time90k": now}


def _int_list(b: dict[str, Any], key: str) -> list[int]:
    value = b.get(key)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise errors.InvalidArgument(f"{key} must be a list of integers")
    return value


def _time(b: dict[str, Any], key: str, now: Time) -> Time:
    value = b.get(key)
    if not isinstance(value, dict) or set(value) != {"base", "rel90k"}:
        raise errors.InvalidArgument(f'{key} must be {{"base": "now" or "epoch", "rel90k": n}}')
    base, rel = value["base"], value["rel90k"]
    if base not in ("now", "epoch"):
        raise errors.InvalidArgument(f'{key}.base must be "now" or "epoch"')
    if not isinstance(rel, int) or isinstance(rel, bool) or abs(rel) >= MAX_TIME:
        raise errors.InvalidArgument(f"{key}.rel90k must be an integer below 2^62")
    t = rel + (now if base == "now" else 0)
    if not 0 < t < MAX_TIME:
        raise errors.InvalidArgument(f"{key} must be after 1970 and before 2^62 (90 kHz units)")
    return t


# ----------------------------------------------------------------------------- /api/


def signal_types_json(db: Database) -> list[dict[str, Any]]:
    return [_type_json(t) for t in db.signal_types.values()]


def _type_json(t: SignalType) -> dict[str, Any]:
    states = []
    for s in t.states:
        state: dict[str, Any] = {"value": s.value, "name": s.name}
        if s.motion:
            state["motion"] = True
        if s.color is not None:
            state["color"] = s.color
        states.append(state)
    return {"uuid": str(t.uuid), "states": states}


def signal_visible(db: Database, sig: Signal) -> bool:
    """Per-camera rights for signals: a caller limited to some cameras sees (and may set)
    a signal only when every camera it is tied to is within the limit; a signal tied to
    no camera is for unlimited callers only."""
    limit = camera_limit()
    if limit is None:
        return True
    return bool(sig.cameras) and all(db.cameras[c].uuid in limit for c in sig.cameras)


def signals_json(db: Database, *, days: bool, now: Time) -> list[dict[str, Any]]:
    bounds: dict[str, tuple[Time, Time]] = {}  # each day's, computed once for all signals
    return [_signal_json(db, s, days=days, now=now, bounds=bounds)
            for s in db.signals.values() if signal_visible(db, s)]  # fmt: skip


def _signal_json(
    db: Database, sig: Signal, *, days: bool, now: Time, bounds: dict[str, tuple[Time, Time]]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": sig.id,
        "uuid": str(sig.uuid),
        "shortName": sig.short_name,
        "cameras": {str(db.cameras[c].uuid): rel for c, rel in sorted(sig.cameras.items())},
        "type": str(db.signal_types[sig.type_id].uuid),
    }
    if days:
        n = max((s.value for s in db.signal_types[sig.type_id].states), default=0)
        out["days"] = {}
        for day, states in sorted(db.signal_days(sig.id, now).items()):
            if day not in bounds:
                bounds[day] = day_bounds(day, db.tz)
            start, end = bounds[day]
            out["days"][day] = {
                "startTime90k": start,
                "endTime90k": end,
                "states": [states.get(v, 0) for v in range(1, n + 1)],
            }
    return out
