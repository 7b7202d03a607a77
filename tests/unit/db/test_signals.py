"""Signals in the database (``nvr.db.signals``): types, signals, Moonfire's update
semantics, listings by time, per-day totals kept in memory, the motion signal, retention."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nvr.base import errors
from nvr.base.time90k import UNITS_PER_HOUR, UNITS_PER_SEC, Time, from_datetime
from nvr.db.database import Database
from nvr.db.signals import MOTION_TYPE_UUID, LocalDays, SignalState
from nvr.db.stream_summary import day_bounds
from nvr.db.types import CameraConfig, StreamConfig
from tests.support.determinism import T0

SEC = UNITS_PER_SEC
MIN = 60 * SEC
HOUR = UNITS_PER_HOUR
BERLIN = ZoneInfo("Europe/Berlin")
OFF, ON = 1, 2


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    Database.create(tmp_path, T0)
    d = Database.open(tmp_path, tz=dt.UTC, now=lambda: T0)
    d.add_camera("driveway", config=CameraConfig())
    yield d
    d.close()


def onoff(db: Database) -> int:
    t = db.add_signal_type("onoff", [SignalState(OFF, "off", color="#888888"),
                                     SignalState(ON, "on", motion=True, color="#ff8888")])
    return db.add_signal("driveway motion", t.id, {1: "direct"}).id


def stored(db: Database, sid: int) -> list[tuple[int, int]]:
    with db._read("test") as conn:
        return [(t, s) for t, s in conn.execute(
            "select time_90k, state from signal_change where signal_id = ? order by time_90k",
            (sid,))]


def test_moonfire_request_sequence(db: Database) -> None:
    """The three requests of Moonfire's reference, with their times: a live client
    predicting a minute ahead, then extending, then ending the motion."""
    sid = onoff(db)
    db.update_signals([sid], [ON], T0, T0 + 60 * SEC)  # request 1: now, now + 1 min
    assert stored(db, sid) == [(T0, ON), (T0 + MIN, 0)]
    db.update_signals([sid], [ON], T0, T0 + 30 * SEC + MIN)  # request 2, 30 s later
    assert stored(db, sid) == [(T0, ON), (T0 + 90 * SEC, 0)]
    db.update_signals([sid], [OFF], T0 + 35 * SEC, T0 + 95 * SEC)  # request 3: motion ended
    assert stored(db, sid) == [(T0, ON), (T0 + 35 * SEC, OFF), (T0 + 95 * SEC, 0)]


def test_what_was_before_resumes_and_nothing_repeats(db: Database) -> None:
    sid = onoff(db)
    db.update_signals([sid], [OFF], T0, T0 + HOUR)
    db.update_signals([sid], [ON], T0 + MIN, T0 + 2 * MIN)  # inside: off resumes
    assert stored(db, sid) == [(T0, OFF), (T0 + MIN, ON), (T0 + 2 * MIN, OFF), (T0 + HOUR, 0)]
    db.update_signals([sid], [OFF], T0 + 30 * SEC, T0 + 90 * SEC)  # overlapping the on
    assert stored(db, sid) == [(T0, OFF), (T0 + 90 * SEC, ON), (T0 + 2 * MIN, OFF),
                               (T0 + HOUR, 0)]
    db.update_signals([sid], [OFF], T0 + 10 * SEC, T0 + 20 * SEC)  # the same state: no-op
    db.update_signals([sid], [ON], T0 + 5 * SEC, T0 + 5 * SEC)  # empty span: no-op
    assert stored(db, sid) == [(T0, OFF), (T0 + 90 * SEC, ON), (T0 + 2 * MIN, OFF),
                               (T0 + HOUR, 0)]
    db.update_signals([sid], [0], T0 - MIN, T0 + 2 * HOUR)  # unknown over all of it
    assert stored(db, sid) == []
    assert db.signals[sid].days == {} and db.signals[sid].last_change is None


def test_a_random_history_matches_a_model_and_a_reopen(tmp_path: Path) -> None:
    """Many overlapping updates against a per-second model of the step function; the
    day totals kept in memory equal those a fresh open computes, and the model's."""
    Database.create(tmp_path, T0)
    rng = random.Random(14)
    base = from_datetime(dt.datetime(2024, 3, 30, 22, 0, tzinfo=BERLIN))  # over the DST day
    span = 30 * HOUR // SEC  # seconds modelled
    model = [0] * span
    with Database.open(tmp_path, tz=BERLIN, now=lambda: base + span * SEC) as db:
        db.add_camera("c")
        sid = onoff(db)
        for _ in range(300):
            a = rng.randrange(span)
            b = min(span, a + rng.choice([1, 5, 60, 3600, 5 * 3600]))
            state = rng.choice([0, OFF, ON])
            db.update_signals([sid], [state], base + a * SEC, base + b * SEC)
            model[a:b] = [state] * (b - a)
        changes = stored(db, sid)
        expect = [(base + i * SEC, s) for i, s in enumerate(model)
                  if s != (model[i - 1] if i else 0)]
        if model[-1]:  # unknown after the modelled span
            expect.append((base + span * SEC, 0))
        assert changes == expect
        kept = db.signal_days(sid, 0)
    with Database.open(tmp_path, tz=BERLIN, now=lambda: base) as again:
        assert again.signal_days(sid, 0) == kept
    days: dict[str, dict[int, int]] = {}
    for i, s in enumerate(model):
        if s:
            day = dt.datetime.fromtimestamp((base + i * SEC) / (90000), BERLIN).date().isoformat()
            days.setdefault(day, {}).setdefault(s, 0)
            days[day][s] += SEC
    assert kept == days


def test_bad_updates_change_nothing(db: Database) -> None:
    sid = onoff(db)
    other = db.add_signal("gate", db.signals[sid].type_id).id
    db.update_signals([sid], [OFF], T0, T0 + MIN)
    before = stored(db, sid)
    bad: list[tuple[list[int], list[int], Time, Time, type[errors.NvrError], str]] = [
        ([other, sid], [1, 1], T0, T0 + 1, errors.InvalidArgument, "sorted"),
        ([sid, sid], [1, 1], T0, T0 + 1, errors.InvalidArgument, "sorted"),
        ([sid], [1, 1], T0, T0 + 1, errors.InvalidArgument, "same length"),
        ([sid, 99], [1, 1], T0, T0 + 1, errors.NotFound, "no signal with id 99"),
        ([sid], [3], T0, T0 + 1, errors.InvalidArgument, "has no state 3"),
        ([sid], [-1], T0, T0 + 1, errors.InvalidArgument, "has no state -1"),
        ([sid], [1], T0, T0 - 1, errors.InvalidArgument, "end must not be before start"),
        ([sid], [1], T0 - 40 * 24 * HOUR, T0, errors.InvalidArgument, "longer than 31 days"),
        ([sid], [1], T0, T0 + 3650 * 24 * HOUR, errors.InvalidArgument, "a day from now"),
        ([sid], [1], T0 + 25 * HOUR, T0 + 26 * HOUR, errors.InvalidArgument, "a day from now"),
        ([sid], [1], T0 - 3660 * 24 * HOUR, T0 - 3659 * 24 * HOUR, errors.InvalidArgument,
         "between ten years ago"),
        ([sid], [1], 0, 1, errors.InvalidArgument, "after 1970"),
        ([sid], [1], T0, 1 << 63, errors.InvalidArgument, "before 2"),
    ]
    for ids, states, start, end, kind, text in bad:
        with pytest.raises(kind, match=text):
            db.update_signals(ids, states, start, end)
    assert stored(db, sid) == before
    assert stored(db, other) == []


def test_changes_by_time_start_with_each_signals_state(db: Database) -> None:
    a = onoff(db)
    b = db.add_signal("gate", db.signals[a].type_id).id
    db.update_signals([a, b], [OFF, ON], T0, T0 + HOUR)
    db.update_signals([a], [ON], T0 + MIN, T0 + 2 * MIN)
    got = db.signal_changes(T0 + 30 * SEC, T0 + HOUR)
    assert (got.times, got.signal_ids, got.states, got.next_start) == (
        [T0, T0, T0 + MIN, T0 + 2 * MIN], [a, b, a, a], [OFF, ON, ON, OFF], None)
    whole = db.signal_changes(0, 1 << 62)
    assert whole.times == [T0, T0, T0 + MIN, T0 + 2 * MIN, T0 + HOUR, T0 + HOUR]
    assert whole.signal_ids == [a, b, a, a, a, b]
    with pytest.raises(errors.InvalidArgument):
        db.signal_changes(T0, T0 - 1)


def test_changes_by_time_are_cut_between_instants(db: Database) -> None:
    a = onoff(db)
    b = db.add_signal("gate", db.signals[a].type_id).id
    for i in range(5):  # both change at T0 + i min
        db.update_signals([a, b], [ON, ON], T0 + i * MIN, T0 + i * MIN + SEC)
    got = db.signal_changes(T0, T0 + HOUR, limit=5)
    assert got.times == [T0, T0, T0 + SEC, T0 + SEC]  # not half of the next instant
    assert got.next_start == T0 + MIN
    got = db.signal_changes(T0, T0 + HOUR, limit=1)  # more signals at one instant than that
    assert (got.times, got.next_start) == ([T0, T0], T0 + 1)
    pages, start = [], T0
    while True:
        page = db.signal_changes(start, T0 + HOUR, limit=3)
        pages.append(page)
        if page.next_start is None:
            break
        start = page.next_start
    seen = sorted({(t, s) for p in pages for t, s in zip(p.times, p.signal_ids, strict=True)})
    assert len(seen) == 20


def test_days_per_state_in_the_local_zone_and_up_to_now(tmp_path: Path) -> None:
    Database.create(tmp_path, T0)
    midnight = from_datetime(dt.datetime(2024, 3, 31, tzinfo=BERLIN))  # a 23-hour day
    with Database.open(tmp_path, tz=BERLIN, now=lambda: midnight + 25 * HOUR) as db:
        db.add_camera("driveway")
        sid = onoff(db)
        db.update_signals([sid], [ON], midnight - HOUR, midnight + HOUR)
        db.update_signals([sid], [OFF], midnight + HOUR, midnight + 25 * HOUR)
        assert db.signal_days(sid, 0) == {
            "2024-03-30": {ON: HOUR},
            "2024-03-31": {ON: HOUR, OFF: 22 * HOUR},
            "2024-04-01": {OFF: 2 * HOUR},
        }
        db.update_signals([sid], [ON], midnight + 25 * HOUR, midnight + 25 * HOUR + MIN)
        db.update_signals([sid], [OFF], midnight + 25 * HOUR + MIN, midnight + 26 * HOUR)
        db.update_signals([sid], [OFF], midnight + 26 * HOUR - SEC, midnight + 26 * HOUR)
        # the last change is to "unknown" at +26 h; make the last state "off" with no end
        # (behind the totals' back: the next open builds them again)
        with db._transaction("test") as conn:
            conn.execute("delete from signal_change where time_90k = ?", (midnight + 26 * HOUR,))
            conn.execute("delete from event_total_zone")
    with Database.open(tmp_path, tz=BERLIN, now=lambda: T0) as db:
        days = db.signal_days(sid, midnight + 27 * HOUR)  # off from +25h01 up to now
        assert days["2024-04-01"] == {OFF: 4 * HOUR - MIN, ON: MIN}  # the day began at +23 h


def test_motion_signal_get_or_create(db: Database) -> None:
    sig = db.motion_signal(1)
    assert sig.short_name == "driveway motion" and sig.cameras == {1: "direct"}
    t = db.signal_types[sig.type_id]
    assert t.uuid == MOTION_TYPE_UUID
    assert [(s.value, s.name, s.motion) for s in t.states] == [(1, "still", False),
                                                               (2, "moving", True)]
    assert db.motion_signal(1) is sig  # found again
    assert db.motion_signal(1, "driveway motion") is sig
    named = db.motion_signal(1, "drive motion (sub)")  # a configured name: made
    assert named.type_id == sig.type_id and db.motion_signal(1, "drive motion (sub)") is named
    plain = db.add_signal_type("door", [SignalState(1, "closed"), SignalState(2, "open")])
    db.add_signal("front door", plain.id, {1: "indirect"})
    with pytest.raises(errors.FailedPrecondition, match="no motion state"):
        db.motion_signal(1, "front door")
    with pytest.raises(errors.NotFound):
        db.motion_signal(99)


def test_catalog_rules(db: Database, tmp_path: Path) -> None:
    t = db.add_signal_type("door", [SignalState(2, "open", color="red"),
                                    SignalState(1, "closed", color="#00ff00")])
    assert [s.value for s in t.states] == [1, 2]
    for states, text in [([], "at least one"), ([SignalState(0, "x")], "1 to 255"),
                         ([SignalState(1, "a"), SignalState(1, "b")], "must differ"),
                         ([SignalState(1, "x", color="url(evil)")], "color")]:
        with pytest.raises(errors.InvalidArgument, match=text):
            db.add_signal_type("other", states)
    with pytest.raises(errors.AlreadyExists):
        db.add_signal_type("door", [SignalState(1, "x")])
    s = db.add_signal("front door", t.id, {1: "indirect"})
    with pytest.raises(errors.AlreadyExists):
        db.add_signal("front door", t.id)
    with pytest.raises(errors.InvalidArgument, match="relation"):
        db.add_signal("back door", t.id, {1: "sideways"})
    with pytest.raises(errors.NotFound):
        db.add_signal("back door", t.id, {7: "direct"})
    with pytest.raises(errors.FailedPrecondition, match="used by signals front door"):
        db.remove_signal_type(t.id)
    db.update_signals([s.id], [2], T0, T0 + MIN)
    # a camera's deletion unties its signals; the signal stays
    db.delete_camera(1)
    assert db.signals[s.id].cameras == {}
    db.remove_signal(s.id)
    db.remove_signal_type(t.id)
    assert db.signals == {} and db.signal_types == {}
    db.close()
    with Database.open(tmp_path, tz=dt.UTC, now=lambda: T0) as again:
        assert again.signals == {} and again.signal_types == {}
        conn = sqlite3.connect(tmp_path / "db")
        assert conn.execute("select count(*) from signal_change").fetchone() == (0,)
        conn.close()


def test_prune_keeps_the_state_at_the_oldest_recording(db: Database) -> None:
    sid = onoff(db)
    stream = db.streams[db.cameras[1].streams["main"]] if db.cameras[1].streams else None
    assert stream is None  # a camera without streams: no recordings, nothing pruned
    for i in range(10):
        db.update_signals([sid], [ON if i % 2 else OFF], T0 + i * MIN, T0 + (i + 1) * MIN)
    assert db.prune_signal_changes() == 0
    cam = db.add_camera("yard", streams={})
    db.signals[sid].cameras[cam.id] = "direct"  # (in memory only: enough here)
    db.update_camera(cam.id, streams={"main": (None, _off_stream())})
    s = db.streams[cam.streams["main"]]
    s.committed.range_start = T0 + 3 * MIN + 30 * SEC  # as if its oldest recording began here
    assert db.prune_signal_changes(batch=2) == 2  # bounded: the two oldest
    assert stored(db, sid)[0] == (T0 + 2 * MIN, OFF)
    assert db.prune_signal_changes() == 2
    assert stored(db, sid)[:2] == [(T0 + 3 * MIN + 30 * SEC, ON), (T0 + 4 * MIN, OFF)]
    assert db.signals[sid].first_change == T0 + 3 * MIN + 30 * SEC
    assert db.prune_signal_changes() == 0
    assert sum(db.signal_days(sid, 0)["2023-11-14"].values()) == 6 * MIN + 30 * SEC


def _off_stream() -> StreamConfig:
    return StreamConfig(url="rtsp://x/", mode="off")


def test_local_days_as_day_bounds() -> None:
    """``LocalDays`` (midnights kept in a list, extended both ways as needed) finds the
    day of every instant as ``day_bounds`` does, over the days when clocks change."""
    rng = random.Random(3)
    local = LocalDays(BERLIN)
    base = from_datetime(dt.datetime(2024, 3, 20, tzinfo=BERLIN))
    for _ in range(2000):
        t = base + rng.randrange(-20 * 24 * HOUR, 240 * 24 * HOUR)
        day = dt.datetime.fromtimestamp(t // SEC, BERLIN).date().isoformat()
        assert local.day_of(t) == (*day_bounds(day, BERLIN), day)
