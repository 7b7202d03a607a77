"""The signals part of ``Database``: signal types, signals and their state over time.

Moonfire NVR's model (docs/design.md, "Signals"). A *signal type* enumerates states (value
1 to 255, a name, whether the state means motion, a UI color); value 0 always means
"unknown". A *signal* has a type and is tied to cameras (``direct``: about what the camera
sees, such as its motion; ``indirect``: about something near it). Its state over time is
a step function stored as *changes* (``signal_change``: from this time, this state);
before its first change a signal is unknown (0), and consecutive changes never repeat a
state.

Writers (``POST /api/signals``, the daemon's motion detector) call ``update_signals(ids,
states, start, end)``: each signal is in its state over ``[start, end)``, and from
``end`` on in whatever state it was in at ``end`` before (so a prediction can be written
ahead and corrected later, and overlapping updates simply overwrite each other). Readers
call ``signal_changes`` (the state at a range's start, then every change in it, bounded)
and ``signal_days`` (time per state per local day, from totals kept in memory and in
``signal_day``, changed in the transaction of every change: an open reads those rows,
not the changes, unless they are missing or split in another zone; so neither an open nor
``/api/`` scans). Retention
(``prune_signal_changes``, called by the syncers after each flush) deletes changes older
than the oldest recording of every camera the signal is tied to, a bounded number per call.

What belongs here: those operations, the value types they use and the per-day arithmetic.
Not here: HTTP parsing (``nvr.web.signals``), tasks. SQL is in ``raw``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import re
import sqlite3
import uuid as uuidlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from nvr.base import errors
from nvr.base.time90k import UNITS_PER_SEC, Duration, Time, to_datetime
from nvr.db import raw_signals
from nvr.db.core import DatabaseCore
from nvr.db.stream_summary import day_bounds

#: nvr's motion signal type (``motion_signal``): 1 still, 2 moving (motion)
MOTION_TYPE_UUID = uuidlib.UUID("9c1c9ad5-53c2-4c3a-9e7b-6d0c2b6f3a11")
MOTION_TYPE_NAME = "motion"
MOTION_STILL, MOTION_MOVING = 1, 2
_DAY: Duration = 86_400 * UNITS_PER_SEC
#: ``update_signals`` refuses a longer span (one call would rewrite that much history)
MAX_UPDATE_SPAN: Duration = 31 * _DAY
#: ``update_signals`` refuses times further from the database's "now" than these: a
#: prediction looks minutes ahead, a backfill as far back as recordings go. (So every
#: time is a date, and the day totals of a signal span at most about ten years.)
MAX_FUTURE: Duration = _DAY
MAX_PAST: Duration = 3653 * _DAY
#: ``signal_changes`` returns at most this many changes per call (then says where to go on)
MAX_LIST_CHANGES = 10_000
#: ``prune_signal_changes`` deletes at most this many changes per signal per call
PRUNE_BATCH = 10_000
RELATIONS = ("direct", "indirect")
MAX_STATE = 255
_MAX_TIME: Time = 1 << 62
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}|[A-Za-z]{1,20}")


@dataclass(frozen=True, slots=True)
class SignalState:
    """One state of a signal type."""

    value: int  # 1 to 255
    name: str
    motion: bool = False
    color: str | None = None  # an HTML color: "#rrggbb" or a name


@dataclass(slots=True)
class SignalType:
    id: int
    uuid: uuidlib.UUID
    short_name: str
    states: tuple[SignalState, ...]

    def state(self, value: int) -> SignalState | None:
        return next((s for s in self.states if s.value == value), None)


#: local day "YYYY-mm-dd" -> state -> time in that state within the day
DayStates = dict[str, dict[int, Duration]]


@dataclass(slots=True)
class Signal:
    id: int
    uuid: uuidlib.UUID
    short_name: str
    type_id: int
    #: camera id -> "direct" or "indirect"
    cameras: dict[int, str] = field(default_factory=dict)
    #: time per state per day between consecutive changes (the last state's open end is
    #: added when read, up to "now": ``signal_days``)
    days: DayStates = field(default_factory=dict)
    first_change: Time | None = None
    last_change: tuple[Time, int] | None = None  # (time, state)


@dataclass(frozen=True, slots=True)
class SignalChanges:
    """What ``GET /api/signals`` returns: parallel lists ordered by time then signal.
    The first entries give each signal's last change before the range's start (its state
    there); ``next_start``, when set, is where a further call continues (the list was cut
    at ``MAX_LIST_CHANGES``)."""

    times: list[Time]
    signal_ids: list[int]
    states: list[int]
    next_start: Time | None = None


class Signals(DatabaseCore):
    """``Database``'s signal operations; see the module docstring."""

    signal_types: dict[int, SignalType]
    signals: dict[int, Signal]
    _days: LocalDays

    def _load_signals(self, stored: bool) -> int:
        """Types, signals and their day totals: from ``signal_day`` (and two index seeks
        per signal) if ``stored``, else by a scan of every change (returns how many it
        read)."""
        self.signal_types, self.signals = {}, {}
        self._days = LocalDays(self.tz)
        conn = self._conn
        states: dict[int, list[SignalState]] = {}
        for type_id, value, name, motion, color in raw_signals.list_signal_type_states(conn):
            states.setdefault(type_id, []).append(SignalState(value, name, bool(motion), color))
        for type_id, u, name in raw_signals.list_signal_types(conn):
            self.signal_types[type_id] = SignalType(
                type_id, uuidlib.UUID(bytes=bytes(u)), name, tuple(states.get(type_id, ()))
            )
        for sid, u, type_id, name in raw_signals.list_signals(conn):
            self.signals[sid] = Signal(sid, uuidlib.UUID(bytes=bytes(u)), name, type_id)
        for sid, camera_id, relation in raw_signals.list_signal_cameras(conn):
            self.signals[sid].cameras[camera_id] = relation
        if stored:
            for sid, day, state, duration in raw_signals.list_signal_days(conn):
                self.signals[sid].days.setdefault(day, {})[state] = duration
            for sid, sig in self.signals.items():
                ends = raw_signals.first_and_last_change(conn, sid)
                if ends is not None:
                    sig.first_change, sig.last_change = ends[0][0], ends[1]
            return 0
        n = 0
        all_changes = raw_signals.iter_all_signal_changes(conn)
        for sid, rows in itertools.groupby(all_changes, lambda r: r[0]):
            changes = [(t, s) for _, t, s in rows]
            sig = self.signals[sid]
            _count(sig.days, changes, 1, self._days)
            sig.first_change, sig.last_change = changes[0][0], changes[-1]
            n += len(changes)
        return n

    def _signal_day_rows(self) -> list[tuple[int, str, int, Duration]]:
        return [(sid, day, state, duration) for sid, sig in self.signals.items()
                for day, states in sig.days.items() for state, duration in states.items()]

    # -- types ---------------------------------------------------------------------------

    def add_signal_type(
        self, short_name: str, states: Sequence[SignalState], *, uuid: uuidlib.UUID | None = None
    ) -> SignalType:
        _check_name(short_name, "signal type")
        if any(t.short_name == short_name for t in self.signal_types.values()):
            raise errors.AlreadyExists(f"a signal type named {short_name!r} already exists")
        u = uuid or uuidlib.uuid4()
        if any(t.uuid == u for t in self.signal_types.values()):
            raise errors.AlreadyExists(f"a signal type with uuid {u} already exists")
        states = tuple(sorted(states, key=lambda s: s.value))
        _check_states(states)
        with self._transaction(f"adding signal type {short_name}") as conn:
            type_id = raw_signals.insert_signal_type(conn, u.bytes, short_name)
            for s in states:
                raw_signals.insert_signal_type_state(
                    conn, type_id, s.value, s.name, s.motion, s.color)
        t = SignalType(type_id, u, short_name, states)
        self.signal_types[type_id] = t
        return t

    def remove_signal_type(self, type_id: int) -> None:
        t = self._signal_type(type_id)
        users = [s.short_name for s in self.signals.values() if s.type_id == type_id]
        if users:
            raise errors.FailedPrecondition(
                f"signal type {t.short_name!r} is used by signals {', '.join(users)}"
            )
        with self._transaction(f"removing signal type {t.short_name}") as conn:
            raw_signals.delete_signal_type(conn, type_id)
        del self.signal_types[type_id]

    def signal_type_by_name(self, name: str) -> SignalType:
        for t in self.signal_types.values():
            if t.short_name == name:
                return t
        raise errors.NotFound(f"no signal type named {name!r}")

    def _signal_type(self, type_id: int) -> SignalType:
        try:
            return self.signal_types[type_id]
        except KeyError:
            raise errors.NotFound(f"no signal type with id {type_id}") from None

    # -- signals -------------------------------------------------------------------------

    def add_signal(
        self,
        short_name: str,
        type_id: int,
        cameras: Mapping[int, str] | None = None,
        *,
        uuid: uuidlib.UUID | None = None,
    ) -> Signal:
        """A new signal of type ``type_id`` tied to ``cameras`` (id -> relation)."""
        _check_name(short_name, "signal")
        self._signal_type(type_id)
        if any(s.short_name == short_name for s in self.signals.values()):
            raise errors.AlreadyExists(f"a signal named {short_name!r} already exists")
        cameras = dict(cameras or {})
        for camera_id, relation in cameras.items():
            self._camera(camera_id)
            if relation not in RELATIONS:
                raise errors.InvalidArgument(f"a signal's camera relation is one of {RELATIONS}")
        u = uuid or uuidlib.uuid4()
        with self._transaction(f"adding signal {short_name}") as conn:
            sid = raw_signals.insert_signal(conn, u.bytes, type_id, short_name)
            for camera_id, relation in sorted(cameras.items()):
                raw_signals.insert_signal_camera(conn, sid, camera_id, relation)
        sig = Signal(sid, u, short_name, type_id, cameras)
        self.signals[sid] = sig
        return sig

    def remove_signal(self, signal_id: int) -> None:
        """Removes a signal with every change of its state."""
        sig = self._signal(signal_id)
        with self._transaction(f"removing signal {sig.short_name}") as conn:
            raw_signals.delete_signal(conn, signal_id)
        del self.signals[signal_id]

    def signal_by_name(self, name: str) -> Signal:
        for s in self.signals.values():
            if s.short_name == name:
                return s
        raise errors.NotFound(f"no signal named {name!r}")

    def _signal(self, signal_id: int) -> Signal:
        try:
            return self.signals[signal_id]
        except KeyError:
            raise errors.NotFound(f"no signal with id {signal_id}") from None

    def _forget_camera_signals(self, camera_id: int) -> None:
        """After the camera's ``signal_camera`` rows were deleted (``delete_camera``)."""
        for sig in self.signals.values():
            sig.cameras.pop(camera_id, None)

    def motion_signal(self, camera_id: int, name: str | None = None) -> Signal:
        """The camera's motion signal, made if missing (with nvr's motion type: 1 still,
        2 moving). ``name`` (default: the camera's ``config.motion_signal``, set by ``nvr
        config camera edit --motion-signal``) picks it by name, which must then be of a
        type with a motion state; without one: the first signal of nvr's motion type tied
        directly to the camera, else a new one named "<camera> motion"."""
        cam = self._camera(camera_id)
        name = name if name is not None else cam.config.motion_signal
        if name is not None:
            try:
                sig = self.signal_by_name(name)
            except errors.NotFound:
                pass
            else:
                if not any(s.motion for s in self.signal_types[sig.type_id].states):
                    raise errors.FailedPrecondition(
                        f"signal {name!r} has no motion state: it cannot be a motion signal"
                    )
                return sig
        motion_type = self.motion_signal_type()
        if name is None:
            for sig in self.signals.values():
                if sig.type_id == motion_type.id and sig.cameras.get(camera_id) == "direct":
                    return sig
            name = f"{cam.short_name} motion"
        return self.add_signal(name, motion_type.id, {camera_id: "direct"})

    def motion_signal_type(self) -> SignalType:
        """nvr's motion signal type (``MOTION_TYPE_UUID``), made if missing."""
        for t in self.signal_types.values():
            if t.uuid == MOTION_TYPE_UUID:
                return t
        name = MOTION_TYPE_NAME
        if any(t.short_name == name for t in self.signal_types.values()):
            name = f"nvr {MOTION_TYPE_NAME}"
        return self.add_signal_type(
            name,
            [SignalState(MOTION_STILL, "still", False, "#888888"),
             SignalState(MOTION_MOVING, "moving", True, "#ff8888")],
            uuid=MOTION_TYPE_UUID,
        )  # fmt: skip

    # -- states --------------------------------------------------------------------------

    def update_signals(
        self, ids: Sequence[int], states: Sequence[int], start: Time, end: Time
    ) -> None:
        """Puts signal ``ids[i]`` in state ``states[i]`` over ``[start, end)``; from ``end``
        on each is in the state it was in at ``end`` before. ``ids`` ascending and unique;
        a state is 0 (unknown) or one of its type's; ``0 < start <= end``, at most
        ``MAX_UPDATE_SPAN`` apart. One transaction for all."""
        if len(ids) != len(states):
            raise errors.InvalidArgument("signalIds and states must have the same length")
        if any(b <= a for a, b in itertools.pairwise(ids)):
            raise errors.InvalidArgument("signalIds must be sorted ascending, without repeats")
        if not 0 < start < _MAX_TIME or not 0 < end < _MAX_TIME:
            raise errors.InvalidArgument("start and end must be after 1970 and before 2^62")
        now = self._now()
        if end > now + MAX_FUTURE or start < now - MAX_PAST:
            raise errors.InvalidArgument(
                "start and end must lie between ten years ago and a day from now"
            )
        if end < start:
            raise errors.InvalidArgument("end must not be before start")
        if end - start > MAX_UPDATE_SPAN:
            raise errors.InvalidArgument(
                f"start to end is longer than {MAX_UPDATE_SPAN // (86_400 * UNITS_PER_SEC)} days"
            )
        for sid, state in zip(ids, states, strict=True):
            sig = self._signal(sid)
            t = self.signal_types[sig.type_id]
            if state != 0 and t.state(state) is None:
                raise errors.InvalidArgument(
                    f"signal {sid} ({sig.short_name}) has no state {state}: its type has "
                    f"{', '.join(str(s.value) for s in t.states) or 'none'} (and 0, unknown)"
                )
        if start == end:
            return
        updates = []
        with self._transaction(f"updating {len(ids)} signals") as conn:
            for sid, state in zip(ids, states, strict=True):
                update = _set_state(conn, sid, state, start, end, self._days)
                raw_signals.add_signal_days(conn, update.rows(sid))
                updates.append(update)
        for sid, update in zip(ids, updates, strict=True):
            update.apply(self.signals[sid])

    def signal_changes(
        self, start: Time, end: Time, *, limit: int = MAX_LIST_CHANGES
    ) -> SignalChanges:
        """Each signal's last change before ``start`` (if any), then every change in
        ``[start, end)``, by time then signal id; at most ``limit`` changes in the range
        (then ``next_start`` says where to continue: a cut never splits one instant)."""
        if end < start:
            raise errors.InvalidArgument("endTime90k must not be before startTime90k")
        out: list[tuple[Time, int, int]] = []
        with self._read("listing signal changes") as conn:
            for sid in sorted(self.signals):
                before = raw_signals.signal_change_before(conn, sid, start)
                if before is not None:
                    out.append((before[0], sid, before[1]))
            rows = raw_signals.list_signal_changes_by_time(conn, start, end, limit + 1)
        out.sort()
        next_start = None
        if len(rows) > limit:
            cut = rows[-1][0]
            kept = [r for r in rows if r[0] < cut]
            if kept:
                rows, next_start = kept, cut
            else:  # over ``limit`` signals changed at one instant: that instant, whole
                with self._read("listing signal changes") as conn:
                    rows = raw_signals.list_signal_changes_by_time(
                        conn, cut, cut + 1, len(self.signals))
                next_start = cut + 1 if cut + 1 < end else None
        out.extend(rows)
        return SignalChanges(
            [t for t, _, _ in out], [sid for _, sid, _ in out], [s for _, _, s in out],
            next_start,
        )  # fmt: skip

    def signal_days(self, signal_id: int, now: Time) -> DayStates:
        """Time in each state per local day; the last change's state counts up to ``now``.
        State 0 (unknown) is left out."""
        sig = self._signal(signal_id)
        days = {day: dict(states) for day, states in sig.days.items()}
        if sig.last_change is not None:
            t, state = sig.last_change
            if state != 0 and now > t:
                _count(days, [(t, state), (now, 0)], 1, self._days)
        return days

    def prune_signal_changes(self, *, batch: int = PRUNE_BATCH) -> int:
        """Deletes each signal's changes from before the oldest recording of the cameras
        it is tied to (cameras without recordings do not count; a signal without such a
        camera keeps everything), at most ``batch`` per signal per call. The state at the
        cut is kept: a change there is added if needed. Returns how many were deleted."""
        deleted = 0
        for sig in list(self.signals.values()):
            oldest = self._oldest_recording(sig.cameras)
            if oldest is None or sig.first_change is None or sig.first_change >= oldest:
                continue
            deleted += self._prune_signal(sig, oldest, batch)
        return deleted

    def signal_problems(self, *, retention: bool = True) -> list[str]:
        """What ``nvr check`` reports of the signals' invariants, one line per signal and
        kind (with how many changes and the first one's time), from one scan of every
        change: a change to a state its type does not have (0, unknown, is always
        allowed); a first change to 0 or a change repeating the state before it (writers
        never store either); with ``retention``, changes from before the oldest recording
        of the signal's cameras (``prune_signal_changes`` deletes them after each flush,
        ``PRUNE_BATCH`` at a time)."""
        unknown, repeated, old = "to a state its type does not have", "repeating the state "\
            "before them", "before the oldest recording of its cameras"
        found: dict[tuple[int, str], list[int]] = {}  # -> [count, first time, its state]
        oldest = {sid: self._oldest_recording(sig.cameras) for sid, sig in self.signals.items()}
        with self._read("checking signal changes") as conn:
            prev_sid, prev_state = None, 0
            for sid, t, state in raw_signals.iter_all_signal_changes(conn):
                if sid != prev_sid:
                    prev_sid, prev_state = sid, 0
                sig = self.signals.get(sid)
                cut = oldest.get(sid)
                for kind, bad in (
                    (unknown, sig is not None and state != 0
                     and self.signal_types[sig.type_id].state(state) is None),
                    (repeated, state == prev_state),
                    (old, retention and cut is not None and t < cut),
                ):
                    if bad:
                        found.setdefault((sid, kind), [0, t, state])[0] += 1
                prev_state = state
        return [
            f"signal {self.signals[sid].short_name if sid in self.signals else sid}: {n} "
            f"change(s) {kind}, the first at time90k={t}"
            + ("" if kind == old else f" (to state {state})")
            for (sid, kind), (n, t, state) in found.items()
        ]

    def _oldest_recording(self, camera_ids: Iterable[int]) -> Time | None:
        starts = [
            s.committed.range_start
            for cid in camera_ids if cid in self.cameras
            for s in (self.streams[sid] for sid in self.cameras[cid].streams.values())
            if s.committed.range_start is not None
        ]  # fmt: skip
        return min(starts, default=None)

    def _prune_signal(self, sig: Signal, oldest: Time, batch: int) -> int:
        with self._transaction(f"pruning signal {sig.short_name}") as conn:
            nth = raw_signals.nth_signal_change(conn, sig.id, batch)
            cut = oldest if nth is None or nth[0] >= oldest else nth[0]
            hi = raw_signals.signal_change_after(conn, sig.id, cut - 1)
            hi_t = _MAX_TIME if hi is None else hi[0]
            old = raw_signals.signal_changes_between(conn, sig.id, 0, hi_t)
            state_at_cut = next((s for t, s in reversed(old) if t <= cut), 0)
            raw_signals.delete_signal_changes(conn, sig.id, 0, cut - 1)
            if (hi is None or hi[0] != cut) and state_at_cut != 0:
                raw_signals.insert_signal_change(conn, sig.id, cut, state_at_cut)
            new = raw_signals.signal_changes_between(conn, sig.id, 0, hi_t)
            update = _Update.of(old, new, None, hi is None, self._days)
            raw_signals.add_signal_days(conn, update.rows(sig.id))
        update.apply(sig)
        return sum(1 for t, _ in old if t < cut)


@dataclass(frozen=True, slots=True)
class _Update:
    """How one signal's changes in a window of time changed: enough to correct its day
    totals and first/last change. The window's ends are changes that stayed (or the ends
    of time), so every interval between changes that changed lies inside it."""

    new: list[tuple[Time, int]]
    before: tuple[Time, int] | None  # the change before the window (None: none; window from 0)
    at_end: bool  # the window reaches the end of time
    #: (day, state) -> change of the time in that state that day (``signal_day``)
    delta: dict[tuple[str, int], Duration]

    @staticmethod
    def of(
        old: list[tuple[Time, int]], new: list[tuple[Time, int]],
        before: tuple[Time, int] | None, at_end: bool, local: LocalDays,
    ) -> _Update:
        days: DayStates = {}
        _count(days, old, -1, local)
        _count(days, new, 1, local)
        delta = {(day, state): d for day, states in days.items()
                 for state, d in states.items() if d}
        return _Update(new, before, at_end, delta)

    def rows(self, signal_id: int) -> list[tuple[int, str, int, Duration]]:
        """The change as ``raw_signals.add_signal_days`` rows."""
        return [(signal_id, day, state, d) for (day, state), d in self.delta.items()]

    def apply(self, sig: Signal) -> None:
        """After the transaction committed: the same change in memory."""
        for (day, state), d in self.delta.items():
            states = sig.days.setdefault(day, {})
            total = states.get(state, 0) + d
            if total > 0:
                states[state] = total
            else:
                states.pop(state, None)
                if not states:
                    del sig.days[day]
        if self.before is None:
            sig.first_change = self.new[0][0] if self.new else None
        if self.at_end:
            sig.last_change = self.new[-1] if self.new else self.before
        if sig.first_change is None:
            sig.last_change = None


def _set_state(
    conn: sqlite3.Connection, sid: int, state: int, start: Time, end: Time, local: LocalDays
) -> _Update:
    """In the caller's transaction: signal ``sid`` is in ``state`` over ``[start, end)``,
    then as before."""
    lo = raw_signals.signal_change_before(conn, sid, start)
    hi = raw_signals.signal_change_after(conn, sid, end)
    lo_t = 0 if lo is None else lo[0]
    hi_t = _MAX_TIME if hi is None else hi[0]
    old = raw_signals.signal_changes_between(conn, sid, lo_t, hi_t)
    state_before = 0 if lo is None else lo[1]
    state_at_end = next((s for t, s in reversed(old) if t <= end), 0)
    raw_signals.delete_signal_changes(conn, sid, start, end)
    if state != state_before:
        raw_signals.insert_signal_change(conn, sid, start, state)
    if state_at_end != state:
        raw_signals.insert_signal_change(conn, sid, end, state_at_end)
    new = raw_signals.signal_changes_between(conn, sid, lo_t, hi_t)
    return _Update.of(old, new, lo, hi is None, local)


def signal_day_totals(
    changes: Iterable[tuple[int, Time, int]], tz: dt.tzinfo
) -> dict[tuple[int, str, int], Duration]:
    """(signal id, day, state) -> time, from every change as (signal id, time, state) by
    signal then time: what ``signal_day`` holds, recomputed (``nvr check``)."""
    local = LocalDays(tz)
    out: dict[tuple[int, str, int], Duration] = {}
    for sid, rows in itertools.groupby(changes, lambda r: r[0]):
        days: DayStates = {}
        _count(days, [(t, s) for _, t, s in rows], 1, local)
        out.update(((sid, day, state), d) for day, states in days.items()
                   for state, d in states.items())
    return out


def _count(
    days: DayStates, changes: Sequence[tuple[Time, int]], sign: int, local: LocalDays
) -> None:
    """Adds (``sign`` 1) or takes away (-1) the time between consecutive ``changes`` (in
    time order) to or from ``days``, per state (0 left out) and local day; drops days
    left empty. The hot loop of an open: one day lookup per interval that leaves the
    current day, not per interval."""
    touched: set[str] = set()
    day_start, day_end, key = 0, 0, ""
    for (t, state), (t_next, _) in itertools.pairwise(changes):
        if state == 0:
            continue
        while True:
            if not day_start <= t < day_end:
                day_start, day_end, key = local.day_of(t)
            stop = min(t_next, day_end)
            states = days.get(key)
            if states is None:
                states = days[key] = {}
            states[state] = states.get(state, 0) + sign * (stop - t)
            if sign < 0:
                touched.add(key)
            if stop >= t_next:
                break
            t = stop
    for key in touched:
        states = days[key]
        for state in [s for s, d in states.items() if d == 0]:
            del states[state]
        if not states:
            del days[key]


def _check_name(name: str, what: str) -> None:
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise errors.InvalidArgument(f"a {what}'s name must be 1 to 64 printable characters")


def _check_states(states: Sequence[SignalState]) -> None:
    if not states:
        raise errors.InvalidArgument("a signal type needs at least one state")
    values = [s.value for s in states]
    if len(set(values)) != len(values):
        raise errors.InvalidArgument("a signal type's state values must differ")
    for s in states:
        if not 1 <= s.value <= MAX_STATE:
            raise errors.InvalidArgument(f"state values are 1 to {MAX_STATE} (0 is unknown)")
        _check_name(s.name, "state")
        if s.color is not None and not _COLOR.fullmatch(s.color):
            raise errors.InvalidArgument(f"state color {s.color!r} is not #rrggbb or a name")


class LocalDays:
    """The local days of one time zone as a sorted list of their midnights, extended as
    times outside it are seen: finding an instant's day is then a binary search, not a
    date conversion (an open with a million changes counts them all)."""

    def __init__(self, tz: dt.tzinfo) -> None:
        self._tz = tz
        self._starts: list[Time] = []  # day i is [_starts[i], _starts[i + 1])
        self._keys: list[str] = []  # day i's "YYYY-mm-dd"

    def day_of(self, t: Time) -> tuple[Time, Time, str]:
        """The local day holding ``t``: its start, its end and its "YYYY-mm-dd"."""
        self._cover(t)
        i = bisect.bisect_right(self._starts, t) - 1
        return self._starts[i], self._starts[i + 1], self._keys[i]

    def _cover(self, t: Time) -> None:
        """Extends the list of days until it holds ``t``."""
        if not self._starts:
            day = to_datetime(t, self._tz).date().isoformat()
            self._starts, self._keys = list(day_bounds(day, self._tz)), [day]
            return
        while t >= self._starts[-1]:
            day = (dt.date.fromisoformat(self._keys[-1]) + dt.timedelta(days=1)).isoformat()
            self._starts.append(day_bounds(day, self._tz)[1])
            self._keys.append(day)
        while t < self._starts[0]:
            day = (dt.date.fromisoformat(self._keys[0]) - dt.timedelta(days=1)).isoformat()
            self._starts.insert(0, day_bounds(day, self._tz)[0])
            self._keys.insert(0, day)
