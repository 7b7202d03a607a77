"""A viewer that leaves mid-file gives its transcode slot back at once: the disconnect
cancels the request, which does not wait for the worker thread, and the thread stops at
the next frame (issue 20). Real worker threads here (the transcode's own), driven through
the ASGI app with a hand-made ``receive``/``send`` so the disconnect comes exactly while a
frame is being transcoded."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from nvr.transcode import OutFrame, Transcoder
from nvr.web.app import create_app
from nvr.web.transcoding import Transcodes
from tests.support.paths import FIXTURES
from tests.support.transcode import join_transcode_threads
from tests.support.web import Recorded, record, web_context

FRAME = 3000
#: the frame (counting every frame fed) during which the viewer leaves: in the second
#: batch (the first is the first frame alone)
HELD = 5


@pytest.fixture
async def hevc(tmp_path: Path, autojump_clock: trio.testing.MockClock):  # type: ignore[no-untyped-def]
    r = await record(tmp_path, seconds=4, clip=str(FIXTURES / "hevc-640x360.mp4"))
    autojump_clock.autojump_threshold = math.inf  # real threads from here: no jumps
    yield r
    r.env.close()


async def test_a_viewer_leaving_mid_file_frees_the_slot_before_another_frame(
    hevc: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = trio.lowlevel.current_trio_token()
    in_frame = trio.Event()  # the worker is in frame HELD
    go_on = threading.Event()  # lets it finish that frame
    fed = 0
    real_feed = Transcoder.feed

    def feed(self: Transcoder, *args: Any, **kwargs: Any) -> list[OutFrame]:
        nonlocal fed
        fed += 1
        if fed == HELD:
            trio.from_thread.run_sync(in_frame.set, trio_token=token)
            assert go_on.wait(60)  # (a bound for a broken test only)
        return real_feed(self, *args, **kwargs)

    monkeypatch.setattr(Transcoder, "feed", feed)
    ctx = web_context(hevc)
    ctx.transcodes = slots = Transcodes()
    app = create_app(ctx)
    rid = min(x.recording_id for x in hevc.env.db.list_recordings_by_time(
        hevc.stream_id, 0, 2**62))
    left = trio.Event()
    requested = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = f"/api/cameras/{hevc.camera_uuid}/main/view.mp4"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": f"s={rid}.0-{60 * FRAME}&transcode=h264".encode(),
        "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 1),
        "server": ("localhost", 80), "extensions": {},
    }
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, receive, send)
        await in_frame.wait()
        assert slots.active == 1
        bodies = [m for m in sent if m["type"] == "http.response.body"]
        assert len(bodies) == 2  # the init segment and the first frame's fragment
        left.set()
    # the request ended while the worker is still in frame HELD: the slot is free
    assert slots.active == 0
    assert [m for m in sent if m["type"] == "http.response.body"] == bodies
    # the thread finishes that frame and feeds no other
    go_on.set()
    await trio.to_thread.run_sync(join_transcode_threads)
    assert fed == HELD

