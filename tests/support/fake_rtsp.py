"""A minimal RTSP camera in the test's own trio run, for cameras that misbehave in ways the
GStreamer test camera (``tests/support/rtsp.py``) cannot: a handshake trickled a byte at a
time, and RTP packets whose payloads are whatever the test says (random bytes).

It speaks just enough RTSP for FFmpeg's client over TCP: OPTIONS, DESCRIBE (an SDP with one
H.264 video track, with ``sprop-parameter-sets`` when given), SETUP (interleaved channels
0-1), PLAY, then RTP packets on channel 0 every ``packet_interval`` seconds; anything else
gets 200 OK, and interleaved data the client sends (RTCP) is read and ignored. Serve it with
``await nursery.start(camera.serve)``, which returns the port; ``url`` names it.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from nvr.codec import nal


@dataclass
class FakeCamera:
    #: seconds between the bytes of each RTSP response (0: all at once)
    byte_delay: float = 0.0
    #: Annex B SPS and PPS for the SDP's sprop-parameter-sets (empty: none)
    parameter_sets: bytes = b""
    #: the RTP payload of the i-th packet after PLAY
    payload: Callable[[int], bytes] = lambda _i: b""
    packet_interval: float = 1 / 30
    #: the port, once serving
    port: int = 0
    #: RTSP methods received, in order (all connections)
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        """Answers one client until it hangs up."""
        sending = trio.Lock()  # answers and RTP packets share the connection
        async with stream, trio.open_nursery() as nursery:
            with contextlib.suppress(trio.BrokenResourceError):
                reader = _Reader(stream)
                while (request := await reader.request()) is not None:
                    method, cseq = request
                    self.requests.append(method)
                    answer = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{self._answer(method)}"
                    async with sending:
                        await self._send(stream, answer)
                    if method == "PLAY":
                        nursery.start_soon(self._play, stream, sending)
            nursery.cancel_scope.cancel()

    def _answer(self, method: str) -> str:
        if method == "DESCRIBE":
            sdp = self._sdp()
            return (
                f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
            )
        if method == "SETUP":
            return "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1234\r\n\r\n"
        if method == "OPTIONS":
            return "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
        return "Session: 1234\r\n\r\n"

    def _sdp(self) -> str:
        fmtp = "packetization-mode=1"
        if self.parameter_sets:
            sets = ",".join(
                base64.b64encode(unit).decode() for unit in nal.split_annex_b(self.parameter_sets)
            )
            fmtp += f";sprop-parameter-sets={sets}"
        return (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=fake\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 {fmtp}\r\na=control:track0\r\n"
        )

    async def _send(self, stream: trio.SocketStream, text: str) -> None:
        data = text.encode()
        if not self.byte_delay:
            await stream.send_all(data)
            return
        for i in range(len(data)):
            await stream.send_all(data[i : i + 1])
            await trio.sleep(self.byte_delay)

    async def _play(self, stream: trio.SocketStream, sending: trio.Lock) -> None:
        """Sends RTP packets on interleaved channel 0 until the client hangs up."""
        with contextlib.suppress(trio.BrokenResourceError):
            for i in itertools.count():
                marker = 0x80 * (i % 30 == 29)
                seq, timestamp = i % (1 << 16), i * 3000 % (1 << 32)
                header = bytes([0x80, 0x60 | marker]) + seq.to_bytes(2, "big")
                header += timestamp.to_bytes(4, "big") + b"\x00\x00\x12\x34"  # SSRC
                packet = header + self.payload(i)
                async with sending:
                    await stream.send_all(b"$\x00" + len(packet).to_bytes(2, "big") + packet)
                await trio.sleep(self.packet_interval)


class _Reader:
    """Reads RTSP requests from a client, skipping interleaved binary data."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await self._stream.receive_some()
        except trio.BrokenResourceError:
            return False
        self._buf += data
        return bool(data)

    async def request(self) -> tuple[str, str] | None:
        """The next request's method and CSeq; None when the client hung up."""
        while True:
            if self._buf[:1] == b"$":
                if len(self._buf) >= 4:
                    end = 4 + int.from_bytes(self._buf[2:4], "big")
                    if len(self._buf) >= end:
                        del self._buf[:end]
                        continue
            elif (head_end := self._buf.find(b"\r\n\r\n")) >= 0:
                head = self._buf[:head_end].decode(errors="replace").split("\r\n")
                fields = dict(
                    line.split(":", 1) for line in head[1:] if ":" in line
                )
                lengths = {k.strip().lower(): v.strip() for k, v in fields.items()}
                end = head_end + 4 + int(lengths.get("content-length", "0"))
                if len(self._buf) >= end:
                    del self._buf[:end]
                    return head[0].split(" ", 1)[0], lengths.get("cseq", "0")
            if not await self._fill():
                return None
