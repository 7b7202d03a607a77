"""The storage forecast in ``/api/``: ``nvrForecast`` per stream and
``nvrSampleFileDirs`` (hidden from a caller limited to some cameras)."""

from __future__ import annotations

import pytest

from nvr.db.auth import PERMISSIONS
from nvr.storage.space import DiskSpace
from nvr.web.context import StreamStatus
from tests.support.web import Recorded, inline_web_threads, recorded
from tests.unit.web.test_auth import make_site

__all__ = ["inline_web_threads", "recorded"]  # fixtures

pytestmark = pytest.mark.usefixtures("inline_web_threads")


async def test_forecast_fields(
    recorded: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(recorded)
    db = site.ctx.db
    sid = recorded.stream_id
    db.streams[sid].config.retain_bytes = 10 << 30
    free = 5 << 30

    def status(s: int) -> StreamStatus | None:
        from nvr.ingest.streamer import StreamState

        return StreamStatus(StreamState("recording", 0), None, free, 1 << 30)

    site.ctx.stream_status = status
    # the disk as measured at the request (it wins over the syncer's last measurement)
    monkeypatch.setattr(DiskSpace, "of", classmethod(lambda cls, st: cls(100 << 30, free)))
    c, _ = await site.login("admin")
    top = await (await c.get("/api/?cameraConfigs=true")).get_json()
    (stream,) = top["cameras"][0]["streams"].values()
    f = stream["nvrForecast"]
    total = stream["totalSampleFileBytes"]
    rate = total * 90_000 / stream["totalDuration90k"]
    assert f["bytesPerSec"] == round(rate)
    assert f["sampledDuration90k"] == stream["totalDuration90k"]
    assert f["budgetDays"] == round((10 << 30) / (rate * 86_400), 3)
    (d,) = top["nvrSampleFileDirs"]
    assert d["path"] == recorded.env.sample_dir.as_posix()
    assert (d["freeBytes"], d["minFreeBytes"], d["retainBytes"]) == (free, 1 << 30, 10 << 30)
    # 4 GiB to the floor at the stream's rate (its budget has more room than that)
    assert d["floorDays"] == round((4 << 30) / rate / 86_400, 3)
    assert d["floorTime90k"] > 0 and d["storedBytes"] == total
    assert (d["totalBytes"], d["warning"]) == (100 << 30, None)
    # a caller limited to some cameras sees no totals of all of them
    a = site.ctx.auth
    assert a is not None
    site.add_user("limited", PERMISSIONS)
    a.update_user(a.user_by_name("limited").id, cameras=frozenset())
    c, _ = await site.login("limited")
    top = await (await c.get("/api/")).get_json()
    assert "nvrSampleFileDirs" not in top and top["cameras"] == []
