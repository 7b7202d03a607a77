"""Archives configured while the daemon records (``nvr.supervisor``'s uploaders, through the
archive routes the control socket serves), on a mock clock with replayed cameras and
in-process stores: an added archive's uploader starts at once, a changed one restarts
alone with its new settings, a removed one stops; the cameras keep one run and the other
archive keeps uploading throughout; a change that cannot apply changes nothing; the
secret key is never logged nor in an answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from quart.typing import TestClientProtocol as Client

from nvr import daemon
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig, Config
from nvr.db.archives import ArchiveConfig
from nvr.offline import admin
from nvr.testing.env import create_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from nvr.web.app import create_app
from nvr.web.context import WebContext
from tests.support.daemon import by_stream, committed_recordings, runs_of
from tests.support.determinism import T0, run_inline
from tests.support.memstore import MemoryStore
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
CLIP = str(FIXTURES / "h264-640x360.mp4")
URLS = ("rtsp://cam0/main", "rtsp://cam1/main")
SECRET = "s3cr3t-never-shown"
ADMIN = BindConfig(allow_unauthenticated=("adminConfig", "readCameraConfigs", "viewVideo"))

pytestmark = pytest.mark.usefixtures("inline_seam")


@pytest.fixture(autouse=True)
def _inline(monkeypatch: pytest.MonkeyPatch) -> None:
    # uploaders started from a request run in the request's context, which the test's
    # inline switch does not reach: their thread seams run inline here too
    for module in ("nvr.supervisor", "nvr.archive.uploader", "nvr.web.api"):
        monkeypatch.setattr(f"{module}.run_blocking", run_inline)


def archive(name: str, bucket: str, **over: Any) -> dict[str, Any]:
    return {"shortName": name, "endpoint": "http://127.0.0.1:9", "bucket": bucket,
            "accessKey": "AK", "secretKey": SECRET, **over}


@asynccontextmanager
async def running(
    tmp_path: Path, stores: dict[str, MemoryStore]
) -> AsyncIterator[tuple[daemon.Daemon, Client]]:
    """The daemon recording cam0 and cam1 with archive ``a`` (bucket ``bkt-a``), and a
    client of the configuration routes over it."""
    create_env(tmp_path, streams=2, flush_if_sec=0)
    with admin.open_db(tmp_path / "db") as db:
        db.add_archive("a", ArchiveConfig("http://127.0.0.1:9", "bkt-a", access_key="AK",
                                          secret_key=SECRET))
    clocks = SimulatedClocks(T0)
    opener = ReplayOpener(clocks, {u: [Session(load_packets(CLIP), loops=None)] for u in URLS})
    config = Config(db_dir=tmp_path / "db", time_zone="UTC", binds=(), rotate_interval_sec=10)

    def open_store(c: ArchiveConfig, _n: int) -> MemoryStore:
        assert c.secret_key == SECRET
        return stores.setdefault(c.bucket, MemoryStore())

    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(
            lambda task_status: daemon.run(config, clocks=clocks, opener=opener,
                                           handle_signals=False, open_store=open_store,
                                           task_status=task_status)
        )  # fmt: skip
        assert d.supervisor is not None
        ctx = WebContext(db=d.db, dirs={}, clocks=clocks, bind=ADMIN, reconfigure=d.supervisor,
                         uploaders=d.uploaders)
        try:
            yield d, create_app(ctx).test_client()
        finally:
            d.shutdown.set()


def samples(store: MemoryStore) -> int:
    return sum(1 for k in store.objects if k.endswith(".sample"))


async def test_archives_come_change_and_go_while_recording_and_uploading(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stores: dict[str, MemoryStore] = {}
    async with running(tmp_path, stores) as (d, c):
        db = d.db
        a = db.archive_by_name("a")
        up_a = d.uploaders[a.id]
        await trio.sleep(35)
        seen_a = samples(stores["bkt-a"])
        assert seen_a >= 4  # both streams' first recordings

        resp = await c.post("/api/nvr/archives", json={"archive": archive("b", "bkt-b")})
        assert resp.status_code == 200, await resp.get_data(as_text=True)
        added = await resp.get_json()
        assert added["streams"] == 2 and SECRET not in str(added)
        b_id = added["id"]
        up_b = d.uploaders[b_id]
        await trio.sleep(1)  # it uploads the backlog at once
        assert db.archive_backlog(b_id).recordings == 0
        assert samples(stores["bkt-b"]) == sum(s.committed.num_recordings
                                               for s in db.streams.values())

        # refused: a duplicate name, a bad bucket, an unknown field; nothing changes
        before = (sorted(db.archives), db.archives[b_id].config.to_json(), dict(d.uploaders))
        for method, path, body, status, text in [
            ("POST", "/api/nvr/archives", {"archive": archive("b", "bkt-c")}, 409,
             "already exists"),
            ("POST", "/api/nvr/archives", {"archive": archive("c", "B!")}, 400, "bucket must"),
            ("POST", "/api/nvr/archives", {"archive": archive("c", "bkt-c", secretKey="")}, 400,
             "secretKey"),
            ("PATCH", "/api/nvr/archives/b", {"update": {"bucket": "no/slash"}}, 400,
             "bucket must"),
            ("PATCH", "/api/nvr/archives/b", {"update": {"shortName": "x"}}, 400,
             "unknown field update.shortName"),
            ("PATCH", "/api/nvr/archives/b", {"update": {"streams": [
                {"cameraUuid": str(db.cameras[1].uuid), "type": "sub"}]}}, 404, "no sub stream"),
            ("PATCH", "/api/nvr/archives/nope", {"update": {}}, 404, "no archive named"),
            ("DELETE", "/api/nvr/archives/nope", {}, 404, "no archive named"),
        ]:
            resp = await c.open(path, method=method, json=body)
            answer = await resp.get_data(as_text=True)
            assert resp.status_code == status and text in answer, (body, answer)
            assert SECRET not in answer and answer.count("\n") == 1
        assert (sorted(db.archives), db.archives[b_id].config.to_json(),
                dict(d.uploaders)) == before

        # edit b: only its uploader restarts, with the new bucket; a's goes on
        t_edit = trio.current_time()
        resp = await c.patch("/api/nvr/archives/b", json={"update": {
            "bucket": "bkt-b2", "streams": [{"cameraUuid": str(db.cameras[1].uuid)}]}})
        assert resp.status_code == 204, await resp.get_data(as_text=True)
        assert trio.current_time() == t_edit  # applied at once
        assert d.uploaders[a.id] is up_a and d.uploaders[b_id] is not up_b
        assert up_b._poke_now not in db.flush_listeners  # the old one was detached
        await trio.sleep(1)
        # the new bucket gets the backlog of the one stream b now copies (the rows of
        # what the old bucket holds stay: an edit does not re-upload)
        assert stores["bkt-b2"].objects == {} or all(
            "/main/" in k for k in stores["bkt-b2"].objects)
        n_b = samples(stores["bkt-b"])
        await trio.sleep(30)
        assert samples(stores["bkt-b"]) == n_b  # the old bucket gets nothing more
        assert samples(stores["bkt-b2"]) >= 2  # cam0's new recordings
        assert all(k.split("/")[0] == str(db.cameras[1].uuid) for k in stores["bkt-b2"].objects)

        # remove b: its uploader stops, the archive is forgotten; a goes on
        resp = await c.delete("/api/nvr/archives/b", json={})
        assert resp.status_code == 204
        assert b_id not in db.archives and b_id not in d.uploaders
        assert d.uploaders[a.id] is up_a
        n_b2 = samples(stores["bkt-b2"])
        await trio.sleep(30)
        assert samples(stores["bkt-b2"]) == n_b2
        assert samples(stores["bkt-a"]) > seen_a + 4
        assert up_a.status.value.ok
    # archive a uploaded everything committed, each exactly once
    assert all(n == 1 for n in stores["bkt-a"].puts.values())
    # the cameras were never interrupted: one run each, ended by the shutdown
    for recs in by_stream(committed_recordings(tmp_path / "db")).values():
        (run,) = runs_of(recs)
        assert run[-1].end_reason == "shutdown"
    assert SECRET not in caplog.text
    assert "archive b added (2 streams)" in caplog.text
