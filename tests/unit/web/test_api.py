"""The JSON API (Moonfire-compatible shapes) over a database recorded from a fixture clip."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from nvr.base.units import format_size
from nvr.config import BindConfig
from nvr.db.types import CameraConfig
from nvr.ingest.streamer import StreamState
from nvr.storage.space import DiskSpace
from nvr.syncer import SyncerStatus
from nvr.web.api import Redactor, status_json
from nvr.web.app import create_app
from nvr.web.context import StreamStatus
from tests.support.determinism import T0
from tests.support.web import SEC, Recorded, client, recorded, web_context

__all__ = ["recorded"]  # a fixture


pytestmark = pytest.mark.usefixtures("inline_seam")


async def test_recordings_coalesce_runs(recorded: Recorded, autojump_clock: object) -> None:
    resp = await client(recorded).get(f"/api/cameras/{recorded.camera_uuid}/main/recordings")
    assert resp.status_code == 200
    body = await resp.get_json()
    rows = sorted(body["recordings"], key=lambda r: r["startId"])
    assert [(r["startId"], r.get("endId"), r["runStartId"]) for r in rows] == [
        (0, 2, 0), (3, None, 3),
    ]
    assert rows[0]["hasTrailingZero"] is True and rows[0]["videoSamples"] == 6000
    assert rows[0]["endReason"] == "the camera ended the stream"
    assert rows[0]["startTime90k"] == T0
    assert rows[1]["startTime90k"] >= rows[0]["endTime90k"] + 5 * SEC
    # Entry 1 is the test environment's own; the fixture clip's is 2.
    assert [r["videoSampleEntryId"] for r in rows] == [2, 2]
    assert body["videoSampleEntries"] == {
        "2": {"width": 640, "height": 360, "pixelHSpacing": 1, "pixelVSpacing": 1,
              "aspectWidth": 16, "aspectHeight": 9, "nvrCodec": "avc1.64001e"}
    }


async def test_split_and_time_range(recorded: Recorded, autojump_clock: object) -> None:
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/recordings"
    body = await (await c.get(url, query_string={"split90k": 90 * SEC})).get_json()
    ids = sorted((r["startId"], r.get("endId")) for r in body["recordings"])
    assert ids == [(0, None), (1, 2), (3, None)]
    body = await (await c.get(url, query_string={
        "startTime90k": T0 + 130 * SEC, "endTime90k": T0 + 140 * SEC})).get_json()
    assert [r["startId"] for r in body["recordings"]] == [1]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/cameras/not-a-uuid/main/recordings", 404),
        ("/api/cameras/00000000-0000-0000-0000-000000000000/main/recordings", 404),
        ("/api/cameras/{uuid}/sub/recordings", 404),
        ("/api/cameras/{uuid}/main/recordings?startTime90k=abc", 400),
        ("/api/cameras/{uuid}/main/recordings?startTime90k=%D9%A3", 400),  # Arabic-Indic 3
        ("/api/cameras/{uuid}/main/recordings?startTime90k=1_000", 400),
        ("/api/cameras/{uuid}/main/recordings?startTime90k=%2012", 400),
        ("/api/cameras/{uuid}/main/recordings?startTime90k=5&endTime90k=4", 400),
        ("/api/cameras/{uuid}/main/recordings?split90k=0", 400),
        ("/api/cameras/{uuid}/main/recordings?endTime90k=99999999999999999999999", 400),
        ("/api/?days=maybe", 400),
        ("/api/nothing", 404),
    ],
)
async def test_bad_requests_get_one_line_reasons(recorded: Recorded, autojump_clock: object,
                                                 path: str, status: int) -> None:
    resp = await client(recorded).get(path.format(uuid=recorded.camera_uuid))
    assert resp.status_code == status
    assert resp.content_type == "text/plain; charset=utf-8"
    text = await resp.get_data(as_text=True)
    assert text.count("\n") == 1 and "Traceback" not in text


async def test_top_level_and_camera(recorded: Recorded, autojump_clock: object) -> None:
    c = client(recorded)
    body = await (await c.get("/api/", query_string={"days": "true"})).get_json()
    assert body["timeZoneName"] == "UTC" and body["signals"] == [] and body["signalTypes"] == []
    assert body["permissions"]["viewVideo"] is True
    assert body["permissions"]["adminUsers"] is False
    (cam,) = body["cameras"]
    main = cam["streams"]["main"]
    recs = recorded.env.db.list_recordings_by_time(recorded.stream_id, 0, 1 << 62)
    assert main["totalDuration90k"] == sum(r.wall_duration_90k for r in recs)
    assert main["totalSampleFileBytes"] == sum(r.sample_file_bytes for r in recs)
    assert main["minStartTime90k"] == T0
    assert main["maxEndTime90k"] == recs[-1].end_time_90k
    assert list(main["days"]) == ["2023-11-14"]
    day = main["days"]["2023-11-14"]
    assert day["endTime90k"] - day["startTime90k"] == 86400 * SEC
    assert "config" not in cam
    one = await (await c.get(f"/api/cameras/{recorded.camera_uuid}/")).get_json()
    assert one["streams"]["main"]["days"] == main["days"]
    assert one["shortName"] == "cam0"


async def test_without_permission_everything_needs_a_login(recorded: Recorded,
                                                           autojump_clock: object) -> None:
    c = client(recorded, BindConfig())
    for path in ("/api/", f"/api/cameras/{recorded.camera_uuid}/main/recordings"):
        resp = await c.get(path)
        assert resp.status_code == 401
    resp = await client(recorded).get("/api/?cameraConfigs=true")
    assert resp.status_code == 401  # readCameraConfigs is not granted


async def test_camera_config_uses_moonfire_names_and_leaves_out_empty_values(
        recorded: Recorded, autojump_clock: object) -> None:
    db = recorded.env.db
    cam = db.cameras[db.streams[recorded.stream_id].camera_id]
    everything = BindConfig(allow_unauthenticated=("viewVideo", "readCameraConfigs"))

    async def config() -> object:
        body = await (await client(recorded, everything).get(
            "/api/", query_string={"cameraConfigs": "true"})).get_json()
        return body["cameras"][0]["config"]

    assert await config() == {}
    db.update_camera(cam.id, config=CameraConfig("admin", "s3cret", "http://192.0.2.10:85"))
    assert await config() == {"onvifBaseUrl": "http://192.0.2.10:85", "username": "admin",
                              "password": "s3cret"}
    db.update_camera(cam.id, config=CameraConfig("", "", "http://192.0.2.10:85"))
    assert await config() == {"onvifBaseUrl": "http://192.0.2.10:85"}


def failing_status(r: Recorded) -> StreamStatus:
    """A camera that refused the connection, on a disk that is full."""
    path = r.env.db.dirs[r.env.dir_id].path
    return StreamStatus(
        StreamState("backoff", T0, "open failed: Unavailable: connecting to "
                    "rtsp://admin:pw@192.0.2.10:554/Streaming/Channels/101: Connection refused",
                    T0 + 10 * SEC),
        SyncerStatus("flush", T0, f"creating {path}/0000000100000007: No space left on "
                     "device (also /var/lib/nvr/db/db-wal)", 3),
        free_bytes=0,
    )


@pytest.mark.parametrize("read_configs", [False, True])
async def test_last_errors_hide_urls_and_paths_without_read_camera_configs(
        recorded: Recorded, autojump_clock: object, read_configs: bool) -> None:
    perms = ("viewVideo", "readCameraConfigs") if read_configs else ("viewVideo",)
    ctx = web_context(recorded, BindConfig(allow_unauthenticated=perms))
    status = failing_status(recorded)
    ctx.stream_status = lambda sid: status if sid == recorded.stream_id else None
    c = create_app(ctx).test_client()
    top = await (await c.get("/api/")).get_json()
    one = await (await c.get(f"/api/cameras/{recorded.camera_uuid}/")).get_json()
    for body in (top["cameras"][0], one):
        st = body["streams"]["main"]["nvrStatus"]
        assert st["state"] == "backoff" and st["nextTry90k"] == T0 + 10 * SEC
        assert st["syncer"]["failingStep"] == "flush" and st["syncer"]["freeBytes"] == 0
        if read_configs:
            assert st["lastError"] == status.stream.last_error
            assert st["syncer"]["lastError"] == status.syncer.last_error  # type: ignore[union-attr]
        else:
            assert st["lastError"] == (
                "open failed: Unavailable: connecting to <URL>: Connection refused")
            assert st["syncer"]["lastError"] == (
                "creating <sample file dir>/0000000100000007: No space left on device "
                "(also <path>)")


@pytest.mark.parametrize(("kind", "failing", "shown"), [
    ("recording", "commit", "blocked"),
    ("recording", None, "recording"),
    ("backoff", "commit", "backoff"),
    ("connecting", "fsync file", "connecting"),
])
def test_a_stream_recording_while_its_syncer_fails_is_blocked(
        kind: str, failing: str | None, shown: str) -> None:
    """Issue 12, point 8: while the syncer retries a step, nothing recorded becomes durable."""
    syncer = SyncerStatus(failing, T0, f"{failing} failed" if failing else None, 3)
    status = StreamStatus(StreamState(kind, T0), syncer)  # type: ignore[arg-type]
    assert status_json(status, redact=None)["state"] == shown


async def test_redactor_leaves_ordinary_text_alone(recorded: Recorded,
                                                   autojump_clock: object) -> None:
    redact = Redactor(recorded.env.db)
    for text in ("no data for 15 s", "the camera ended the stream", "read 1/2 of a frame",
                 "Invalid data found when processing input", "HTTP 401 (Unauthorized)"):
        assert redact(text) == text
    assert redact("rtsps://[2001:db8::1]:322/x?a=b, then") == "<URL>, then"


@pytest.mark.parametrize("read_configs", [False, True])
async def test_directories_show_their_disk_and_warn_when_budgets_exceed_it(
        recorded: Recorded, autojump_clock: object, read_configs: bool) -> None:
    """Issue 17: the status page named a directory "directory 1", showed no free space,
    and a budget larger than the disk went unnoticed. (The path is for callers who may
    read camera configurations, issue 12 point 4.)"""
    perms = ("viewVideo", "readCameraConfigs") if read_configs else ("viewVideo",)
    c = client(recorded, BindConfig(allow_unauthenticated=perms))
    db, dir_id = recorded.env.db, recorded.env.dir_id
    disk = DiskSpace.of(os.statvfs(db.dirs[dir_id].path))

    async def dirs() -> list[dict[str, object]]:
        body = await (await c.get("/api/")).get_json()
        return body["nvrSampleFileDirs"]  # type: ignore[no-any-return]

    stream = db.streams[recorded.stream_id]
    cam = db.cameras[stream.camera_id]

    def budget(n: int) -> None:
        db.update_camera(cam.id, streams={"main": (dir_id, replace(
            db.streams[stream.id].config, retain_bytes=n))})

    budget(disk.total_bytes)  # all of it: fits
    (d,) = await dirs()
    expected = {
        "id": dir_id,
        "totalBytes": disk.total_bytes,
        "retainBytes": stream.config.retain_bytes,
        "fsBytes": db.stream_summary(stream.id).fs_bytes,
        "warning": None,
    }
    if read_configs:
        expected["path"] = db.dirs[dir_id].path
    free = d.pop("freeBytes")
    assert isinstance(free, int) and 0 < free <= disk.total_bytes
    forecast = {"minFreeBytes", "storedBytes", "bytesPerSec", "budgetDays", "heldDays",
                "floorDays", "floorTime90k"}  # (test_forecast_api checks these)
    assert {k: v for k, v in d.items() if k not in forecast} == expected
    assert set(d) == {*expected, *forecast}
    budget(disk.total_bytes + 1)
    (d,) = await dirs()
    assert d["retainBytes"] == disk.total_bytes + 1
    assert d["warning"] == (
        f"the streams' budgets ({format_size(disk.total_bytes + 1)}) are more than the disk "
        f"holds ({format_size(disk.total_bytes)}): the disk will fill up before retention "
        "deletes anything")


async def test_login_available_only_when_some_user_can_log_in(
        recorded: Recorded, autojump_clock: object) -> None:
    """Issue 17: the demo (no users) showed a "Log in" link that could not work."""
    ctx = web_context(recorded)
    c = create_app(ctx).test_client()
    users = ctx.auth
    assert users is not None

    async def available() -> object:
        return (await (await c.get("/api/")).get_json())["nvrLoginAvailable"]

    assert await available() is False
    no_password = users.add_user("nopass")
    assert await available() is False
    alice = users.add_user("alice", password_hash=users.hash_password("secret"), disabled=True)
    assert await available() is False
    users.update_user(alice.id, disabled=False)
    assert await available() is True
    assert no_password.password_hash is None


async def test_archives_show_state_and_backlog_never_keys(
        recorded: Recorded, autojump_clock: object) -> None:
    """``archives`` (extension): streams, backlog, the uploader's state; the endpoint and
    bucket only with cameraConfigs; keys never; error texts redacted without it."""
    from nvr.archive.uploader import Uploader
    from nvr.base import errors
    from nvr.db.archives import ArchiveConfig
    from tests.support.memstore import MemoryStore

    db = recorded.env.db
    db.add_archive("offsite", ArchiveConfig(
        "http://192.0.2.7:8333", "bkt", access_key="AKSECRETID", secret_key="SKSECRET"))
    aid = db.archive_by_name("offsite").id
    everything = BindConfig(allow_unauthenticated=("viewVideo", "readCameraConfigs"))
    ctx = web_context(recorded, everything)
    store = MemoryStore()
    up = Uploader(db, aid, store, recorded.env.sdir.open_for_reading, ctx.clocks)
    ctx.uploaders = {aid: up}
    c = create_app(ctx).test_client()
    n = db.count_recordings()

    async def get(configs: bool) -> dict[str, object]:
        resp = await c.get("/api/", query_string={"cameraConfigs": str(configs).lower()})
        text = await resp.get_data(as_text=True)
        assert "AKSECRETID" not in text and "SKSECRET" not in text
        body = await resp.get_json()
        (archive,) = body["archives"]
        return archive  # type: ignore[no-any-return]

    a = await get(False)
    assert a["shortName"] == "offsite" and "config" not in a
    assert a["streams"] == [{"cameraUuid": recorded.camera_uuid, "type": "main"}]
    assert a["backlog"]["recordings"] == n and a["backlog"]["oldestStartTime90k"] == T0
    assert a["status"]["state"] == "ok"
    assert (await get(True))["config"] == {
        "endpoint": "http://192.0.2.7:8333", "bucket": "bkt", "prefix": "", "region": "us-east-1"}
    store.faults = [errors.Unavailable("PUT http://192.0.2.7:8333/bkt/x: refused")]
    await up.run_once()
    a = await get(False)
    assert a["backlog"]["recordings"] == 0 and a["status"]["uploadedRecordings"] == n
    assert a["status"]["state"] == "ok"
    up.status.value = type(up.status.value)(T0, "upload: PUT http://192.0.2.7:8333/bkt/x", 3)
    a = await get(False)
    assert a["status"]["state"] == "retrying" and "192.0.2.7" not in a["status"]["lastError"]
    assert "192.0.2.7" in (await get(True))["status"]["lastError"]
    assert a["status"]["skippedRecordings"] == 0 and a["status"]["lastSkip"] is None
    from nvr.archive.uploader import Skipped
    up.skipped[7] = Skipped(7, T0, "sample file 0000000000000007 no longer has the SHA-256")
    a = await get(False)
    assert a["status"]["skippedRecordings"] == 1
    assert "no longer has the SHA-256" in a["status"]["lastSkip"]
