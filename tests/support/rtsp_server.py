"""The RTSP test camera: GStreamer's RTSP server, run with the system ``/usr/bin/python3``.

This script is not imported by the tests (the venv has no ``gi``); ``tests/support/rtsp.py``
starts it as a subprocess. It binds ``127.0.0.1`` (``--port 0`` picks a free port), prints
exactly one line ``READY <port>`` on stdout once it accepts connections, logs to stderr,
and exits 0 on SIGTERM/SIGINT. It exits 3 if the port cannot be bound (e.g. still in use).

Paths (all media factories are *shared*: one pipeline serves every client of a path):

* ``/live``: ``videotestsrc is-live=true`` encoded by x264 (zero latency, no B-frames, a
  key frame exactly every ``--gop`` frames), size/rate/bitrate from the options.
* ``/file/<name>``: a clip served without re-encoding, looped forever. Each clip is
  demuxed once into memory (``filesrc ! parsebin ! h26Xparse ! appsink``); an ``appsrc``
  then replays its access units with timestamps continuing across loops (loop *k* is
  offset by *k* times the clip's duration, so the RTP timestamps never jump or go
  back), through ``h26Xparse ! rtph26Xpay config-interval=1``. The sinks pace it in real
  time. When the last client leaves, the pipeline is torn down; the next client starts a
  new one at the clip's first frame. By default every clip in ``fixtures/`` is served
  under its stem (``fixtures/h264-640x360.mp4`` is ``/file/h264-640x360``); ``--file
  NAME=PATH`` adds more.

``--user U --password P`` requires RTSP digest authentication on every path.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
CLIP_SUFFIXES = (".mp4", ".ts", ".mkv")
EXIT_BIND_FAILED = 3
ROLE = "user"
LOAD_TIMEOUT_NS = 30 * Gst.SECOND


@dataclass(frozen=True)
class LiveOptions:
    width: int
    height: int
    fps: int
    gop: int
    bitrate_kbps: int


@dataclass(frozen=True)
class AccessUnit:
    """One demuxed frame: Annex B bytes and timing in nanoseconds from the clip start."""

    buffer: Gst.Buffer
    pts: int
    duration: int


@dataclass(frozen=True)
class Clip:
    codec: str  # "h264" or "h265"
    units: tuple[AccessUnit, ...]
    loop_ns: int  # one pass: last pts + last duration


def log(message: str) -> None:
    print(f"rtsp_server: {message}", file=sys.stderr, flush=True)


def live_launch(options: LiveOptions) -> str:
    gop = options.gop
    return (
        "( videotestsrc is-live=true pattern=smpte horizontal-speed=4 "
        f"! video/x-raw,width={options.width},height={options.height},"
        f"framerate={options.fps}/1,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast bitrate={options.bitrate_kbps} "
        f"key-int-max={gop} option-string=min-keyint={gop}:scenecut=0:bframes=0 "
        "! video/x-h264,profile=high "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def load_clip(path: Path) -> Clip:
    """Demuxes ``path`` into memory as Annex B access units (GStreamer, no decoding)."""
    pipeline = Gst.Pipeline.new("loader")
    source = Gst.ElementFactory.make("filesrc")
    source.set_property("location", str(path))
    parse = Gst.ElementFactory.make("parsebin")
    sink = Gst.ElementFactory.make("appsink")
    sink.set_property("sync", False)
    sink.set_property("emit-signals", True)
    for element in (source, parse, sink):
        pipeline.add(element)
    source.link(parse)
    codec: list[str] = []
    buffers: list[Gst.Buffer] = []

    def on_pad_added(_parsebin: Gst.Element, pad: Gst.Pad) -> None:
        name = pad.query_caps(None).get_structure(0).get_name()
        if name not in ("video/x-h264", "video/x-h265") or codec:
            return
        codec.append(name.removeprefix("video/x-"))
        parser = Gst.ElementFactory.make(f"{codec[0]}parse")
        caps = Gst.ElementFactory.make("capsfilter")
        caps.set_property(
            "caps", Gst.Caps.from_string(f"{name},stream-format=byte-stream,alignment=au")
        )
        for element in (parser, caps):
            pipeline.add(element)
            element.sync_state_with_parent()
        pad.link(parser.get_static_pad("sink"))
        parser.link(caps)
        caps.link(sink)

    def on_new_sample(appsink: Gst.Element) -> Gst.FlowReturn:
        buffers.append(appsink.emit("pull-sample").get_buffer())
        return Gst.FlowReturn.OK

    parse.connect("pad-added", on_pad_added)
    sink.connect("new-sample", on_new_sample)
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(
        LOAD_TIMEOUT_NS, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    pipeline.set_state(Gst.State.NULL)
    if message is None or message.type != Gst.MessageType.EOS:
        detail = "timed out" if message is None else message.parse_error()[0].message
        raise RuntimeError(f"{path}: cannot demux: {detail}")
    if not codec or not buffers:
        raise RuntimeError(f"{path}: no H.264/H.265 video found")
    return _clip_from_buffers(codec[0], buffers)


def _clip_from_buffers(codec: str, buffers: list[Gst.Buffer]) -> Clip:
    first = buffers[0].pts
    units = []
    for index, buffer in enumerate(buffers):
        following = buffers[index + 1].pts if index + 1 < len(buffers) else None
        duration = buffer.duration
        if duration == Gst.CLOCK_TIME_NONE:
            duration = (following if following is not None else buffer.pts) - buffer.pts
        units.append(AccessUnit(buffer, buffer.pts - first, duration))
    last = units[-1]
    return Clip(codec, tuple(units), last.pts + last.duration)


class ClipFactory(GstRtspServer.RTSPMediaFactory):
    """A shared media factory replaying one clip in a loop through an ``appsrc``."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.clip: Clip | None = None
        self.lock = threading.Lock()
        self.set_shared(True)
        self.connect("media-configure", self._on_media_configure)

    def loaded(self) -> Clip:
        with self.lock:
            if self.clip is None:
                self.clip = load_clip(self.path)
                log(f"loaded {self.path.name}: {len(self.clip.units)} frames")
            return self.clip

    def do_create_element(self, _url: GstRtsp.RTSPUrl) -> Gst.Element:
        codec = self.loaded().codec
        return Gst.parse_launch(
            "( appsrc name=src is-live=true format=time do-timestamp=false "
            f"caps=video/x-{codec},stream-format=byte-stream,alignment=au "
            f"! {codec}parse ! rtp{codec}pay name=pay0 pt=96 config-interval=1 )"
        )

    def _on_media_configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        log(f"pipeline started for {self.path.name}")  # tests count these: one per pipeline
        source = media.get_element().get_by_name("src")
        source.set_property("max-bytes", 2_000_000)
        player = LoopPlayer(self.loaded())
        source.connect("need-data", player.on_need_data)


class LoopPlayer:
    """Feeds one ``appsrc`` the clip's frames forever, offsetting each pass's timestamps."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.index = 0
        self.loops = 0
        self.base: int | None = None

    def on_need_data(self, source: Gst.Element, _length: int) -> None:
        if self.base is None:
            self.base = source.get_current_running_time()
        unit = self.clip.units[self.index]
        buffer = unit.buffer.copy()
        buffer.pts = self.base + self.loops * self.clip.loop_ns + unit.pts
        buffer.dts = buffer.pts
        buffer.duration = unit.duration
        source.emit("push-buffer", buffer)
        self.index += 1
        if self.index == len(self.clip.units):
            self.index = 0
            self.loops += 1


def add_auth(server: GstRtspServer.RTSPServer, user: str, password: str) -> None:
    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
    auth.add_digest(user, password, token)
    server.set_auth(auth)


def allow_role(factory: GstRtspServer.RTSPMediaFactory) -> None:
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role_from_structure(
        Gst.Structure.from_string(
            f"{ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]
    )
    factory.set_permissions(permissions)


def clip_paths(args: argparse.Namespace) -> dict[str, Path]:
    paths = {}
    if not args.no_fixtures:
        for path in sorted(FIXTURES_DIR.iterdir()):
            if path.suffix in CLIP_SUFFIXES:
                paths[path.stem] = path
    for item in args.file:
        name, _, location = item.partition("=")
        paths[name] = Path(location)
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise SystemExit(f"rtsp_server: no such clip: {', '.join(missing)}")
    return paths


def build_server(args: argparse.Namespace) -> GstRtspServer.RTSPServer:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    live = GstRtspServer.RTSPMediaFactory()
    live.set_launch(
        live_launch(LiveOptions(args.width, args.height, args.fps, args.gop, args.bitrate))
    )
    live.set_shared(True)
    factories: dict[str, GstRtspServer.RTSPMediaFactory] = {"/live": live}
    for name, path in clip_paths(args).items():
        factories[f"/file/{name}"] = ClipFactory(path)
    for mount, factory in factories.items():
        if args.user is not None:
            allow_role(factory)
        mounts.add_factory(mount, factory)
    if args.user is not None:
        add_auth(server, args.user, args.password)
    return server


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GStreamer RTSP test camera")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--width", type=int, default=640, help="/live width")
    parser.add_argument("--height", type=int, default=360, help="/live height")
    parser.add_argument("--fps", type=int, default=30, help="/live frames per second")
    parser.add_argument("--gop", type=int, default=30, help="/live frames per key frame")
    parser.add_argument("--bitrate", type=int, default=500, help="/live kbit/s")
    parser.add_argument("--file", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--no-fixtures", action="store_true", help="do not serve fixtures/")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args(argv)
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    Gst.init(None)
    server = build_server(args)
    if server.attach(None) == 0:
        log(f"cannot bind 127.0.0.1:{args.port}")
        return EXIT_BIND_FAILED
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
