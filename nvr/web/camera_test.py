"""``POST /api/nvr/cameras/test`` (``adminConfig``): the server opens a camera URL and
says what it sends (docs/api.md, "Configuration (extensions)"): a snapshot (JPEG, as a
``data:`` URL), codec, resolution and frame rate, or the exact error recording would
have met. The settings page's "test" button calls it before a camera is saved.

Body: ``{url, username?, password?, rtspTransport?, camera?}``; ``camera`` (a uuid)
supplies that camera's stored credentials for the ones the body leaves out (an edit form
need not hold the password). A camera that cannot be opened is a test that worked:
``200`` with ``{"error": "..."}``; ``4xx`` is for a request that is wrong.

**Bounds.** The URL is opened through the daemon's ``Opener`` (``nvr.ingest.probe``)
with short timeouts and the whole test ends by ``TEST_TIMEOUT``; each caller (a user, or
a client address without a session) runs one test at a time and the server at most
``MAX_TESTS`` at once: more is ``429`` with ``Retry-After``, at once, never queued. The
snapshot is at most ``SNAPSHOT_WIDTH`` wide and decoded from one key frame in a worker
thread.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from quart import Blueprint, current_app
from quart.blueprints import BlueprintSetupState

from nvr import reconfig, thumbnail
from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.time90k import UNITS_PER_SEC, Duration
from nvr.ingest.probe import probe
from nvr.ingest.source import OpenOptions, scrub_userinfo
from nvr.web import auth
from nvr.web.context import camera_by_uuid, ctx
from nvr.web.login_limit import RateLimited

log = logging.getLogger(__name__)

blueprint = Blueprint("camera_test", __name__)

#: tests the whole server runs at once (each holds a connection to a camera and a thread)
MAX_TESTS = 3
#: a test ends by then, whatever the camera does
TEST_TIMEOUT: Duration = 15 * UNITS_PER_SEC
#: connecting may take this long, and then the camera may be silent this long
CONNECT_TIMEOUT: Duration = 10 * UNITS_PER_SEC
READ_TIMEOUT: Duration = 5 * UNITS_PER_SEC
#: the snapshot's largest width (a settings page shows it small)
SNAPSHOT_WIDTH = 640
#: when a refused caller may try again
RETRY_AFTER_SEC = 5

_FIELDS = ("url", "username", "password", "rtspTransport", "camera")
_CODEC_NAMES = {b"avcC": "H.264", b"hvcC": "H.265"}


class Slots:
    """Who is testing now (caller keys); at most one test per key, ``MAX_TESTS`` in all."""

    def __init__(self) -> None:
        self.running: set[str] = set()

    @contextmanager
    def take(self, key: str) -> Iterator[None]:
        if key in self.running:
            raise RateLimited("a camera test of yours is still running", RETRY_AFTER_SEC)
        if len(self.running) >= MAX_TESTS:
            raise RateLimited(
                f"{MAX_TESTS} camera tests are running; try again in a few seconds",
                RETRY_AFTER_SEC,
            )
        self.running.add(key)
        try:
            yield
        finally:
            self.running.discard(key)


@blueprint.record_once
def _make_slots(state: BlueprintSetupState) -> None:
    state.app.extensions["nvr-camera-test"] = Slots()


def _caller_key() -> str:
    who = auth.caller()
    return f"user {who.user.id}" if who.user is not None else f"address {who.address}"


def _options(b: dict[str, Any]) -> tuple[str, OpenOptions]:
    """The URL and how to open it, from the body (validated as a stream's would be)."""
    for key in b:
        if key not in _FIELDS and key != "csrf":
            raise errors.InvalidArgument(f"unknown field {key!r} (known: {', '.join(_FIELDS)})")
    url = b.get("url")
    if not isinstance(url, str) or not url or len(url) > reconfig.MAX_TEXT:
        raise errors.InvalidArgument(
            f"url must be a non-empty string of at most {reconfig.MAX_TEXT} characters"
        )
    url = reconfig.check_url(url, "url")
    username = password = None
    camera = b.get("camera")
    if camera is not None:
        if not isinstance(camera, str):
            raise errors.InvalidArgument("camera must be a camera's uuid")
        stored = camera_by_uuid(camera).config
        username, password = stored.username, stored.password
    for key in ("username", "password"):
        value = b.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > reconfig.MAX_TEXT):
            raise errors.InvalidArgument(
                f"{key} must be a string of at most {reconfig.MAX_TEXT} characters"
            )
    if "username" in b:
        username = b["username"] or None
    if "password" in b:
        password = b["password"] or None
    transport = b.get("rtspTransport", "tcp")
    if transport not in ("tcp", "udp"):
        raise errors.InvalidArgument("rtspTransport must be tcp or udp")
    return url, OpenOptions(
        username=username,
        password=password,
        rtsp_transport=transport,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )


@blueprint.post("/api/nvr/cameras/test")
async def test_camera() -> dict[str, Any]:
    url, options = _options(auth.body())
    c = ctx()
    slots: Slots = current_app.extensions["nvr-camera-test"]
    shown = scrub_userinfo(url, options.password)
    with slots.take(_caller_key()):
        opener = c.opener
        if opener is None:
            raise errors.Unavailable("this server opens no cameras")
        deadline = c.clocks.monotonic() + TEST_TIMEOUT
        try:
            seen = await probe(opener, c.clocks, url, options, deadline)
            entry = seen.key_frame.sample_entry
            size = thumbnail.picture_size(entry, SNAPSHOT_WIDTH)
            data = bytes(seen.key_frame.data)
            jpeg = await run_blocking(thumbnail.render, entry, data, (len(data),), size)
        except errors.NvrError as e:
            log.info("camera test of %s: %s", shown, e)
            return {"error": scrub_userinfo(str(e), options.password)}
    log.info("camera test of %s: %s %dx%d", shown, entry.rfc6381_codec, entry.width,
             entry.height)
    return {
        "codec": entry.rfc6381_codec,
        "codecName": _CODEC_NAMES.get(entry.codec_box_type, entry.rfc6381_codec),
        "width": entry.width,
        "height": entry.height,
        "frameRate": None if seen.frame_rate is None else round(seen.frame_rate, 3),
        "snapshot": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"),
    }
