"""``/api/signals`` and the signals of ``/api/``: the request sequence and response shapes
of Moonfire's ``ref/api.md`` (with our own data), exact times on a mock clock, paging,
permissions and bad input (never a 500)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart.testing import QuartClient

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC, Time
from nvr.config import BindConfig
from nvr.db.database import Database
from nvr.db.signals import SignalState
from nvr.web.app import create_app
from nvr.web.context import MAX_JSON_BODY, WebContext

SEC = UNITS_PER_SEC
T0 = 140_067_468_000_000  # the "now" of Moonfire's first example request
DAY0 = T0 - T0 % (86_400 * SEC)  # its UTC midnight
WRITER = BindConfig(allow_unauthenticated=("viewVideo", "updateSignals"))
VIEWER = BindConfig(allow_unauthenticated=("viewVideo",))


class WallClock(SimulatedClocks):
    """Wall time that moves only when the test says (requests take virtual time too)."""

    def __init__(self) -> None:
        super().__init__(T0)
        self.now = T0

    def realtime(self) -> Time:
        return self.now


@dataclass
class Site:
    db: Database
    signal_id: int
    camera_uuid: str
    type_uuid: str
    clocks: WallClock

    def client(self, bind: BindConfig = WRITER) -> QuartClient:
        ctx = WebContext(db=self.db, dirs={}, clocks=self.clocks, bind=bind)
        return create_app(ctx).test_client()


@pytest.fixture
async def site(tmp_path: Path, autojump_clock: object) -> AsyncIterator[Site]:
    Database.create(tmp_path, T0)
    with inline_blocking(), Database.open(tmp_path, tz=dt.UTC, now=lambda: T0) as db:
        cam = db.add_camera("driveway")
        t = db.add_signal_type("onoff", [SignalState(1, "off", color="#888888"),
                                         SignalState(2, "on", motion=True, color="#ff8888")])
        sig = db.add_signal("driveway motion", t.id, {cam.id: "direct"})
        yield Site(db, sig.id, str(cam.uuid), str(t.uuid), WallClock())


def change(ids: list[int], states: list[int], start: tuple[str, int],
           end: tuple[str, int]) -> dict[str, Any]:
    return {"signalIds": ids, "states": states,
            "start": {"base": start[0], "rel90k": start[1]},
            "end": {"base": end[0], "rel90k": end[1]}}


async def test_moonfire_request_sequence(site: Site) -> None:
    """Requests 1 to 3 of the reference, 30 s and then 5 s apart; the third with state 1
    (the reference's text says the motion ended; its body repeats state 2)."""
    c = site.client()
    sid = site.signal_id
    r = await c.post("/api/signals", json=change([sid], [2], ("now", 0), ("now", 5_400_000)))
    assert (r.status_code, await r.get_json()) == (200, {"time90k": 140_067_468_000_000})
    site.clocks.now += 30 * SEC
    r = await c.post("/api/signals", json=change([sid], [2], ("epoch", 140_067_468_000_000),
                                                 ("now", 5_400_000)))
    assert await r.get_json() == {"time90k": 140_067_470_700_000}
    site.clocks.now += 5 * SEC
    r = await c.post("/api/signals", json=change([sid], [1], ("now", 0), ("now", 5_400_000)))
    assert await r.get_json() == {"time90k": 140_067_471_150_000}

    r = await c.get("/api/signals", query_string={"startTime90k": str(T0 + 10 * SEC),
                                                  "endTime90k": str(T0 + 200 * SEC)})
    assert r.status_code == 200
    assert await r.get_data(as_text=True) == json.dumps({
        "signalIds": [1, 1, 1], "states": [2, 1, 0],
        "times90k": [T0, T0 + 35 * SEC, T0 + 95 * SEC]}, separators=(",", ":")) + "\n"
    r = await c.get("/api/signals")  # all time
    assert (await r.get_json())["times90k"] == [T0, T0 + 35 * SEC, T0 + 95 * SEC]

    top = await (await c.get("/api/", query_string={"days": "true"})).get_json()
    assert top["signals"] == [{
        "id": sid,
        "uuid": str(site.db.signals[sid].uuid),
        "shortName": "driveway motion",
        "cameras": {site.camera_uuid: "direct"},
        "type": site.type_uuid,
        "days": {dt.datetime.fromtimestamp(T0 // SEC, dt.UTC).date().isoformat(): {
            "startTime90k": DAY0, "endTime90k": DAY0 + 86_400 * SEC,
            "states": [60 * SEC, 35 * SEC]}},
    }]
    assert top["signalTypes"] == [{"uuid": site.type_uuid, "states": [
        {"value": 1, "name": "off", "color": "#888888"},
        {"value": 2, "name": "on", "motion": True, "color": "#ff8888"}]}]
    plain = await (await c.get("/api/")).get_json()
    assert "days" not in plain["signals"][0]


async def test_a_long_listing_pages(site: Site) -> None:
    c = site.client()
    db = site.db
    with db._transaction("test") as conn:  # 24,000 changes, more than one answer holds
        # (written directly: as 12,000 updates, each its own commit, they take long)
        conn.executemany(
            "insert into signal_change values (?, ?, ?)",
            [(site.signal_id, T0 + i * 5 * SEC, 2 - i % 2) for i in range(24_000)])
    seen: list[int] = []
    start = 0
    answers = 0
    while True:
        body = await (await c.get("/api/signals", query_string={"startTime90k": str(start)})
                      ).get_json()
        answers += 1
        times = body["times90k"]
        assert len(times) <= 10_001  # at most the limit, plus the state at the start
        seen.extend(t for t in times if t >= start)
        if "nvrNextStartTime90k" not in body:
            break
        start = body["nvrNextStartTime90k"]
    assert answers == 3 and len(seen) == 24_000 and seen == sorted(set(seen))


async def test_permissions(site: Site) -> None:
    body = change([site.signal_id], [2], ("now", 0), ("now", 90000))
    viewer = site.client(VIEWER)
    assert (await viewer.get("/api/signals")).status_code == 200
    r = await viewer.post("/api/signals", json=body)
    assert r.status_code == 401  # no session, and the bind grants no updateSignals
    nobody = site.client(BindConfig())
    assert (await nobody.get("/api/signals")).status_code == 401
    # (sessions, CSRF and forms for both routes: tests/unit/web/test_auth.py's table test)


BAD: list[tuple[Any, int, str]] = [
    (change([2, 1], [1, 1], ("now", 0), ("now", 1)), 400, "sorted"),
    (change([1, 1], [1, 1], ("now", 0), ("now", 1)), 400, "sorted"),
    (change([1], [3], ("now", 0), ("now", 1)), 400, "has no state 3"),
    (change([1], [1, 2], ("now", 0), ("now", 1)), 400, "same length"),
    (change([7], [1], ("now", 0), ("now", 1)), 404, "no signal with id 7"),
    (change([1], [1], ("now", 0), ("now", -1)), 400, "end must not be before start"),
    (change([1], [1], ("now", -40 * 86_400 * SEC), ("now", 0)), 400, "longer than 31"),
    (change([1], [1], ("now", 0), ("now", 10 * 365 * 86_400 * SEC)), 400, "a day from now"),
    (change([1], [1], ("now", -10 * 366 * 86_400 * SEC), ("now", -10 * 366 * 86_400 * SEC)),
     400, "between ten years ago"),
    (change([1], [1], ("epoch", 0), ("epoch", 1)), 400, "after 1970"),
    (change([1], [1], ("now", 0), ("now", 1 << 62)), 400, "rel90k"),
    (change([1], [1], ("now", 0), ("now", (1 << 62) - 1)), 400, "before 2^62"),
    (change([1], [1], ("today", 0), ("now", 1)), 400, "start.base"),
    (change([True], [1], ("now", 0), ("now", 1)), 400, "signalIds must be a list"),
    (change([1], [1.5], ("now", 0), ("now", 1)), 400, "states must be a list"),
    ({**change([1], [1], ("now", 0), ("now", 1)), "end": None}, 400, "end must be"),
    ({**change([1], [1], ("now", 0), ("now", 1)), "end": {"base": "now"}}, 400, "end must be"),
    ({**change([1], [1], ("now", 0), ("now", 1)), "extra": 1}, 400, "unknown field 'extra'"),
    ({"signalIds": [1]}, 400, "states must be a list"),
    ([1, 2], 400, "object"),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD)
async def test_bad_updates(site: Site, body: Any, status: int, reason: str) -> None:
    r = await site.client().post("/api/signals", json=body)
    text = await r.get_data(as_text=True)
    assert (r.status_code, r.content_type) == (status, "text/plain; charset=utf-8"), text
    assert reason in text and text.count("\n") == 1
    assert site.db.signal_changes(0, 1 << 62).times == []


async def test_bad_listings_and_a_huge_body(site: Site) -> None:
    c = site.client()
    for query, reason in [({"startTime90k": "5", "endTime90k": "4"}, "must not be before"),
                          ({"startTime90k": "9" * 20}, "digits"),
                          ({"endTime90k": "-1"}, "between"), ({"startTime90k": "x"}, "integer")]:
        r = await c.get("/api/signals", query_string=query)
        assert r.status_code == 400 and reason in await r.get_data(as_text=True), query
    r = await c.post("/api/signals", data=b" " * (MAX_JSON_BODY + 1),
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = await c.get("/api/signals", query_string={"startTime90k": "0",
                                                  "endTime90k": str(10 * 365 * 86_400 * SEC)})
    assert r.status_code == 200  # a long listing is fine: it is bounded by paging
