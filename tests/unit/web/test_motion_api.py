"""Motion search, its .txt twin and the motion totals of /api/, over summaries stored
through the real path (SummaryBuilder -> Database.put_motion_summary) for the recorded
fixture's recordings: exact spans, pagination, hostile input."""

from __future__ import annotations

import numpy as np
import pytest

from nvr.motion.detector import CELLS, Analysis
from nvr.motion.summary import SummaryBuilder, cells_to_bitmap
from nvr.motion.task import to_row
from tests.support.web import SEC, T0, Recorded, client, recorded

__all__ = ["recorded"]  # a fixture


pytestmark = pytest.mark.usefixtures("inline_seam")


def picture(cells: dict[int, float]) -> Analysis:
    frac = np.zeros(CELLS, np.float32)
    for c, f in cells.items():
        frac[c] = f
    return Analysis(frac, frac >= 0.04, False)


def store(r: Recorded, recording_id: int, seconds: dict[int, dict[int, float]],
          global_at: tuple[int, ...] = ()) -> None:
    b = SummaryBuilder()
    for s in range(0, 120):
        for k in range(5):  # 5 pictures a second
            offset = s * SEC + k * SEC // 5
            if s in global_at:
                b.add(offset, Analysis(np.zeros(CELLS, np.float32), np.zeros(CELLS, bool), True))
            else:
                b.add(offset, picture(seconds.get(s, {})))
    cid = r.stream_id << 32 | recording_id
    assert r.env.db.put_motion_summary(cid, to_row(b.finish())) == "stored"


def bitmap(*cells: int) -> str:
    region = np.zeros(CELLS, bool)
    region[list(cells)] = True
    return cells_to_bitmap(region).hex()


@pytest.fixture
def moved(recorded: Recorded) -> Recorded:
    # recording 0 starts at T0 (120 s), 1 at T0 + 120 s (60 s): see tests/support/web.py
    person = {17: 0.8, 18: 0.5}
    store(recorded, 0, {**{s: person for s in range(10, 15)}, 50: {200: 0.05},
                        118: {17: 1.0}, 119: {17: 1.0}}, global_at=(70,))
    store(recorded, 1, {0: {17: 1.0}, 1: {17: 1.0}})
    return recorded


async def search(r: Recorded, **q: object) -> dict:  # type: ignore[type-arg]
    query = {"startTime90k": T0, "endTime90k": T0 + 3600 * SEC, **q}
    resp = await client(r).get(f"/api/cameras/{r.camera_uuid}/motion", query_string=query)
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    return await resp.get_json()  # type: ignore[no-any-return]


def spans(body: dict) -> list[tuple[int, int, list[int], float]]:  # type: ignore[type-arg]
    return [((s["startTime90k"] - T0) // SEC, (s["endTime90k"] - T0) // SEC,
             s["recordingIds"], s["peak"]) for s in body["spans"]]


async def test_spans_newest_first_across_recordings(moved: Recorded, autojump_clock: object
                                                    ) -> None:
    body = await search(moved, stream="main")
    assert body["stream"] == "main"
    # the person (10-15 s), a weak cell (50 s), motion across the recording boundary
    # (peak: the fraction of the whole picture, levels 255, 13 and 204 + 128 of 255)
    assert spans(body) == [(118, 122, [0, 1], round(1 / 256, 4)),
                           (50, 51, [0], round(13 / 255 / 256, 4)),
                           (10, 15, [0], round((204 + 128) / 255 / 256, 4))]


async def test_region_fraction_and_duration(moved: Recorded, autojump_clock: object) -> None:
    assert spans(await search(moved, stream="main", cells=bitmap(200))) == [
        (50, 51, [0], round(13 / 255, 4))]
    # cell 18 alone: only the person
    assert [s[:3] for s in spans(await search(moved, stream="main", cells=bitmap(18)))] == [
        (10, 15, [0])]
    # a two-cell region with half its area moving at least 50%
    body = await search(moved, stream="main", cells=bitmap(17, 18), minFraction="0.6")
    assert [s[:3] for s in spans(body)] == [(10, 15, [0])]
    body = await search(moved, stream="main", cells=bitmap(17, 200), minDuration90k=4 * SEC)
    assert [s[:3] for s in spans(body)] == [(118, 122, [0, 1]), (10, 15, [0])]
    # the time range cuts spans
    body = await search(moved, stream="main", startTime90k=T0 + 12 * SEC,
                        endTime90k=T0 + 119 * SEC)
    assert [s[:2] for s in spans(body)] == [(118, 119), (50, 51), (12, 15)]


async def test_reads_only_summaries_of_recordings_that_moved_in_the_region(
        moved: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database hands the search only rows whose stored union meets the region (the
    test is in SQL): recording 1 moved in cell 17 alone, so a search of cell 200 never
    sees it, and one of cell 5 sees no row at all."""
    db = moved.env.db
    read: list[int] = []
    real = db.motion_search_rows

    def spy(*args: object) -> list[tuple[int, int, int, bytes, bytes]]:
        rows = real(*args)  # type: ignore[arg-type]
        read.extend(r[0] & 0xFFFFFFFF for r in rows)
        return rows

    monkeypatch.setattr(db, "motion_search_rows", spy)
    assert [s[2] for s in spans(await search(moved, stream="main", cells=bitmap(200)))] == [[0]]
    assert read == [0]
    read.clear()
    assert spans(await search(moved, stream="main", cells=bitmap(5))) == []
    assert read == []
    assert len(spans(await search(moved, stream="main", cells=bitmap(17)))) == 2
    assert read == [0, 1]


async def test_pagination(moved: Recorded, autojump_clock: object) -> None:
    body = await search(moved, stream="main", limit=2)
    assert [s[0] for s in spans(body)] == [118, 50]
    assert body["nextEndTime90k"] == T0 + 50 * SEC
    body = await search(moved, stream="main", limit=2, endTime90k=body["nextEndTime90k"])
    assert [s[0] for s in spans(body)] == [10] and "nextEndTime90k" not in body


async def test_txt_and_api_totals(moved: Recorded, autojump_clock: object) -> None:
    c = client(moved)
    resp = await c.get(f"/api/cameras/{moved.camera_uuid}/motion.txt", query_string={
        "stream": "main", "startTime90k": T0, "endTime90k": T0 + 130 * SEC})
    text = await resp.get_data(as_text=True)
    assert resp.status_code == 200
    lines = text.splitlines()
    assert lines[0] == "camera cam0 stream main: 2 analysed recordings"
    assert lines[1].startswith("recording 0 start") and lines[1].endswith(
        "600 pictures, 0 frames skipped, 8 seconds with motion")
    assert "  +10s 17:204 18:128" in lines and "  +70s global change" in lines
    top = await (await c.get("/api/", query_string={"days": "true"})).get_json()
    (cam,) = top["cameras"]
    day = cam["motion"]["days"]
    assert day == {"2023-11-14": {"motion90k": 10 * SEC, "hours": {"22": 10 * SEC}}}
    assert "motion" not in (await (await c.get("/api/")).get_json())["cameras"][0]


RANGE = {"startTime90k": "0", "endTime90k": str(SEC)}


@pytest.mark.parametrize(("query", "txt_too"), [
    ({}, True),
    ({"startTime90k": "0"}, True),
    ({"startTime90k": "5", "endTime90k": "5"}, True),
    ({"startTime90k": "0", "endTime90k": str(41 * 24 * 3600 * SEC)}, True),
    ({"startTime90k": "x", "endTime90k": "5"}, True),
    ({**RANGE, "cells": "ff"}, False),
    ({**RANGE, "cells": "g" * 64}, False),
    ({**RANGE, "cells": "0" * 64}, False),
    ({**RANGE, "cells": "f" * 65}, False),
    ({**RANGE, "minFraction": "nan"}, False),
    ({**RANGE, "minFraction": "2"}, False),
    ({**RANGE, "minFraction": "-0.1"}, False),
    ({**RANGE, "minFraction": "1e-3"}, False),
    ({**RANGE, "minFraction": ""}, False),
    ({**RANGE, "minFraction": "."}, False),
    ({**RANGE, "minDuration90k": "-1"}, False),
    ({**RANGE, "limit": "0"}, False),
    ({**RANGE, "limit": "1001"}, False),
    ({**RANGE, "limit": "x"}, False),
])
async def test_bad_input_is_400(moved: Recorded, autojump_clock: object,
                                query: dict[str, str], txt_too: bool) -> None:
    routes = ("motion", "motion.txt") if txt_too else ("motion",)
    for route in routes:
        resp = await client(moved).get(f"/api/cameras/{moved.camera_uuid}/{route}",
                                       query_string={"stream": "main", **query})
        assert resp.status_code == 400, (route, query)
        text = await resp.get_data(as_text=True)
        assert text.count("\n") == 1 and resp.content_type == "text/plain; charset=utf-8"


async def test_unknown_camera_or_stream_is_404(moved: Recorded, autojump_clock: object) -> None:
    c = client(moved)
    q = {"startTime90k": "0", "endTime90k": str(SEC)}
    assert (await c.get("/api/cameras/nope/motion", query_string=q)).status_code == 404
    resp = await c.get(f"/api/cameras/{moved.camera_uuid}/motion",
                       query_string={**q, "stream": "sub"})
    assert resp.status_code == 404
