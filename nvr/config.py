"""Daemon settings from a TOML file (``conf/nvr.example.toml`` documents every key).

Cameras, streams and directories live in the database (``nvr config ...``); this file
holds how the daemon itself runs: where the database is, HTTP binds, the time zone,
worker limits, rotation and logging. Unknown keys and wrong types are errors that name
the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nvr.base import errors
from nvr.base.units import parse_size
from nvr.db.auth import PERMISSIONS

__all__ = [
    "CONTROL_SOCKET",
    "MAX_UNIX_PATH",
    "PERMISSIONS",
    "BindConfig",
    "Config",
    "control_socket_path",
    "load_config",
    "parse_address",
    "parse_config",
]

DEFAULT_DB_DIR = "/var/lib/nvr/db"
#: the daemon's control socket, in the database directory (``nvr config`` while it runs)
CONTROL_SOCKET = "control.sock"
#: the longest path a unix socket may have (``sun_path`` less its terminating NUL)
MAX_UNIX_PATH = 107


def control_socket_path(db_dir: Path) -> Path:
    return db_dir / CONTROL_SOCKET


@dataclass(frozen=True, slots=True)
class BindConfig:
    """One HTTP listener."""

    #: ``host:port`` (``[::1]:8080`` for IPv6; port 0 picks a free one) or ``unix:/path``
    address: str = "127.0.0.1:8080"
    #: permissions granted to requests without a session (default: none)
    allow_unauthenticated: tuple[str, ...] = ()
    #: trust ``X-Forwarded-For``/``X-Forwarded-Proto`` from a reverse proxy on this bind:
    #: the client address (login rate limits, logs) and whether the client used HTTPS
    #: (the session cookie's ``Secure`` attribute) are then taken from them
    trust_forward_headers: bool = False
    #: serve HTTPS with this certificate chain and key (PEM files)
    tls_cert: str | None = None
    tls_key: str | None = None
    #: serve Prometheus metrics at ``/metrics`` on this bind, to anyone who reaches it
    metrics: bool = False
    #: host names a request's ``Host`` may carry on a bind that serves anything without a
    #: login (DNS rebinding), and a WebSocket's ``Origin`` besides the Host itself; IP
    #: addresses always pass. None: ``localhost``, the bound host and the machine's names
    allowed_hosts: tuple[str, ...] | None = None
    #: open HTTP connections on this bind at most; at the limit it stops accepting (new
    #: clients wait in the kernel's queue) until one closes
    max_connections: int = 512
    #: open connections from one client address at most (further ones are closed at
    #: once); 0 = no per-address limit (a bind behind a reverse proxy sees one address)
    max_connections_per_address: int = 64


@dataclass(frozen=True, slots=True)
class Config:
    db_dir: Path = Path(DEFAULT_DB_DIR)
    #: IANA zone for day boundaries and displayed times (default: the system's)
    time_zone: str | None = None
    binds: tuple[BindConfig, ...] = field(default_factory=lambda: (BindConfig(),))
    #: threads reading cameras at once (default: the number of recorded streams + 2)
    worker_threads: int | None = None
    rotate_interval_sec: int = 60
    #: pictures per second motion analysis looks at (it decodes every frame)
    motion_fps: float = 5.0
    #: a camera that sends nothing for this long is disconnected and retried
    read_timeout_sec: float = 10.0
    #: connecting to a camera (the whole RTSP handshake) may take this long, then it is
    #: retried
    connect_timeout_sec: float = 20.0
    #: "text" or "json" (one JSON object per line, for journald/log shippers)
    log_format: str = "text"
    log_level: str = "info"
    #: how long HTTP requests in flight may take to finish at shutdown (idle connections
    #: and WebSockets close at once)
    graceful_timeout_sec: float = 5.0
    #: an HTTP connection without a request in progress is closed after this long: a new
    #: one (TLS handshake, then the complete request head) or one kept alive after a response
    http_idle_timeout_sec: float = 5.0
    #: a request body must arrive in full within this long of its head
    http_body_timeout_sec: float = 10.0
    #: under a systemd watchdog: stop pinging when a syncer's pass has run this long
    #: (retrying a failing step, or an fsync that never returns); 0 = never
    watchdog_syncer_stuck_sec: float = 600.0
    #: ... or a streamer has been connecting, or recording without a new frame, this long
    #: (its own timeouts should end that within seconds: something hangs); 0 = never
    watchdog_streamer_stuck_sec: float = 300.0
    #: ... or a camera connect its streamer gave up on still runs this long after FFmpeg's
    #: interrupt should have ended it (it is blocked where no interrupt reaches); 0 = never
    watchdog_thread_hung_sec: float = 60.0
    #: ... or once the event loop was blocked this long; 0 = never
    watchdog_loop_blocked_sec: float = 30.0
    #: a login session unused for this long ends (default 30 days)
    session_idle_timeout_sec: int = 30 * 86400
    #: a login session ends this long after the login, used or not (default 90 days)
    session_max_age_sec: int = 90 * 86400
    #: free-space floor of every sample-file directory's filesystem, in bytes (0: none):
    #: below it the directory's oldest video is deleted (docs/design.md,
    #: "Recording, syncing and retention")
    min_free: int = 0
    #: per-directory floors by absolute path, overriding ``min_free``
    min_free_by_dir: dict[str, int] = field(default_factory=dict)
    #: videos converted to H.264 at once for browsers that cannot decode the recorded
    #: codec (``transcode=h264``; docs/api.md, "Extensions"); more are refused with 503
    transcode_max_concurrent: int = 2
    #: the converted picture's height at most
    transcode_max_height: int = 720
    #: how much lower than recording's the converting threads' CPU priority is (nice)
    transcode_nice: int = 10
    #: ``nvr run --read-only`` with an archive attached (a second site) polls it for new
    #: recordings, cameras and tombstones this often (``nvr.archive.follow``); 0 = never
    #: (the database is then opened read-only)
    archive_follow_interval_sec: float = 60.0

    def min_free_for(self, path: str) -> int:
        return self.min_free_by_dir.get(path, self.min_free)


def _check_type(key: str, value: Any, expected: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) and bool not in (
        expected if isinstance(expected, tuple) else (expected,)
    ):
        raise errors.InvalidArgument(f"config: {key} must be {_type_name(expected)}")
    if not isinstance(value, expected):
        raise errors.InvalidArgument(f"config: {key} must be {_type_name(expected)}")


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return {
        "str": "a string",
        "int": "an integer",
        "bool": "true or false",
        "float": "a number",
        "list": "a list",
    }.get(t.__name__, t.__name__)


def _parse_bind(i: int, raw: Any) -> BindConfig:
    where = f"binds[{i}]"
    if not isinstance(raw, dict):
        raise errors.InvalidArgument(f"config: {where} must be a table")
    known = {f.name for f in fields(BindConfig)}
    for key in raw:
        if key not in known:
            raise errors.InvalidArgument(f"config: unknown key {where}.{key}")
    b = BindConfig()
    if "address" in raw:
        _check_type(f"{where}.address", raw["address"], str)
        b = replace(b, address=raw["address"])
    if "allow_unauthenticated" in raw:
        perms = raw["allow_unauthenticated"]
        _check_type(f"{where}.allow_unauthenticated", perms, list)
        for p in perms:
            if p not in PERMISSIONS:
                raise errors.InvalidArgument(
                    f"config: {where}.allow_unauthenticated: unknown permission {p!r} "
                    f"(known: {', '.join(PERMISSIONS)})"
                )
        b = replace(b, allow_unauthenticated=tuple(perms))
    if "trust_forward_headers" in raw:
        _check_type(f"{where}.trust_forward_headers", raw["trust_forward_headers"], bool)
        b = replace(b, trust_forward_headers=raw["trust_forward_headers"])
    if "metrics" in raw:
        _check_type(f"{where}.metrics", raw["metrics"], bool)
        b = replace(b, metrics=raw["metrics"])
    if "allowed_hosts" in raw:
        hosts = raw["allowed_hosts"]
        _check_type(f"{where}.allowed_hosts", hosts, list)
        for h in hosts:
            if not isinstance(h, str) or not h or any(c in h for c in "/:@ ") or h != h.strip():
                raise errors.InvalidArgument(
                    f"config: {where}.allowed_hosts: {h!r} is not a host name (no port, "
                    'e.g. "nvr.example.com")'
                )
        b = replace(b, allowed_hosts=tuple(hosts))
    for key in ("max_connections", "max_connections_per_address"):
        if key in raw:
            _check_type(f"{where}.{key}", raw[key], int)
            b = replace(b, **{key: raw[key]})
    if not 1 <= b.max_connections <= 1_000_000:
        raise errors.InvalidArgument(f"config: {where}.max_connections must be 1 to 1000000")
    if not 0 <= b.max_connections_per_address <= 1_000_000:
        raise errors.InvalidArgument(
            f"config: {where}.max_connections_per_address must be 0 to 1000000 (0: no limit)"
        )
    for key in ("tls_cert", "tls_key"):
        if key in raw:
            _check_type(f"{where}.{key}", raw[key], str)
            b = replace(b, **{key: raw[key]})
    if (b.tls_cert is None) != (b.tls_key is None):
        raise errors.InvalidArgument(f"config: {where} needs both tls_cert and tls_key")
    parse_address(b.address, where=f"{where}.address")
    return b


def parse_address(address: str, *, where: str = "address") -> tuple[str, int] | str:
    """``(host, port)`` for ``host:port``, or the path for ``unix:/path``."""
    if address.startswith("unix:"):
        path = address[5:]
        if not path.startswith("/"):
            raise errors.InvalidArgument(f"config: {where}: unix socket path must be absolute")
        return path
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise errors.InvalidArgument(
            f"config: {where}: {address!r} is not host:port (e.g. 127.0.0.1:8080)"
        )
    host = host.strip("[]")
    if not host:
        raise errors.InvalidArgument(f"config: {where}: {address!r} has no host")
    return host, int(port)


_SCALARS: dict[str, type | tuple[type, ...]] = {
    "db_dir": str,
    "time_zone": str,
    "worker_threads": int,
    "rotate_interval_sec": int,
    "motion_fps": (int, float),
    "read_timeout_sec": (int, float),
    "connect_timeout_sec": (int, float),
    "log_format": str,
    "log_level": str,
    "graceful_timeout_sec": (int, float),
    "http_idle_timeout_sec": (int, float),
    "http_body_timeout_sec": (int, float),
    "watchdog_syncer_stuck_sec": (int, float),
    "watchdog_streamer_stuck_sec": (int, float),
    "watchdog_thread_hung_sec": (int, float),
    "watchdog_loop_blocked_sec": (int, float),
    "session_idle_timeout_sec": int,
    "session_max_age_sec": int,
    "transcode_max_concurrent": int,
    "transcode_max_height": int,
    "transcode_nice": int,
    "archive_follow_interval_sec": (int, float),
}


def _parse_size(key: str, value: Any) -> int:
    """Bytes from an integer or a size string (``"10GiB"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str):
        try:
            n = parse_size(value)
        except errors.InvalidArgument as e:
            raise errors.InvalidArgument(f"config: {key}: {e}") from None
    else:
        raise errors.InvalidArgument(f"config: {key} must be an integer or a size like \"10GiB\"")
    if n < 0:
        raise errors.InvalidArgument(f"config: {key} must be >= 0")
    return n


def parse_config(data: dict[str, Any]) -> Config:
    for key in data:
        if key not in _SCALARS and key not in ("binds", "min_free", "min_free_by_dir"):
            raise errors.InvalidArgument(f"config: unknown key {key!r}")
    values: dict[str, Any] = {}
    for key, t in _SCALARS.items():
        if key in data:
            _check_type(key, data[key], t)
            values[key] = data[key]
    if "db_dir" in values:
        values["db_dir"] = Path(values["db_dir"])
    if "binds" in data:
        _check_type("binds", data["binds"], list)
        values["binds"] = tuple(_parse_bind(i, b) for i, b in enumerate(data["binds"]))
    if "min_free" in data:
        values["min_free"] = _parse_size("min_free", data["min_free"])
    if "min_free_by_dir" in data:
        by_dir = data["min_free_by_dir"]
        if not isinstance(by_dir, dict):
            raise errors.InvalidArgument("config: min_free_by_dir must be a table")
        for path in by_dir:
            if not path.startswith("/"):
                raise errors.InvalidArgument(
                    f"config: min_free_by_dir: {path!r} is not an absolute path"
                )
        values["min_free_by_dir"] = {
            p: _parse_size(f"min_free_by_dir.{p!r}", v) for p, v in by_dir.items()
        }
    cfg = Config(**values)
    if cfg.log_format not in ("text", "json"):
        raise errors.InvalidArgument('config: log_format must be "text" or "json"')
    if cfg.log_level not in ("debug", "info", "warning", "error"):
        raise errors.InvalidArgument("config: log_level must be debug, info, warning or error")
    if cfg.worker_threads is not None and cfg.worker_threads < 1:
        raise errors.InvalidArgument("config: worker_threads must be at least 1")
    for key in ("read_timeout_sec", "connect_timeout_sec"):
        if not 0.1 <= getattr(cfg, key) <= 600:
            raise errors.InvalidArgument(f"config: {key} must be 0.1 to 600")
    for key in ("http_idle_timeout_sec", "http_body_timeout_sec"):
        if not 0.01 <= getattr(cfg, key) <= 3600:
            raise errors.InvalidArgument(f"config: {key} must be 0.01 to 3600")
    if not 0.1 <= cfg.motion_fps <= 30:
        raise errors.InvalidArgument("config: motion_fps must be 0.1 to 30")
    if not 1 <= cfg.rotate_interval_sec <= 240:
        raise errors.InvalidArgument("config: rotate_interval_sec must be 1 to 240")
    for key in ("watchdog_syncer_stuck_sec", "watchdog_streamer_stuck_sec",
                "watchdog_thread_hung_sec", "watchdog_loop_blocked_sec"):
        if getattr(cfg, key) < 0:
            raise errors.InvalidArgument(f"config: {key} must not be negative (0: never)")
    # the longest a streamer legitimately stays connecting, or recording without a frame
    longest_sec = max(cfg.read_timeout_sec + 5, cfg.connect_timeout_sec)
    if cfg.watchdog_streamer_stuck_sec and cfg.watchdog_streamer_stuck_sec < 2 * longest_sec:
        raise errors.InvalidArgument(
            "config: watchdog_streamer_stuck_sec must be 0 or at least twice the larger of "
            f"read_timeout_sec + 5 s and connect_timeout_sec ({2 * longest_sec:g})"
        )
    for key in ("session_idle_timeout_sec", "session_max_age_sec"):
        if not 60 <= getattr(cfg, key) <= 10 * 365 * 86400:
            raise errors.InvalidArgument(f"config: {key} must be 60 to 315360000 (10 years)")
    if not 0 <= cfg.transcode_max_concurrent <= 64:
        raise errors.InvalidArgument("config: transcode_max_concurrent must be 0 to 64")
    if not 144 <= cfg.transcode_max_height <= 2160:
        raise errors.InvalidArgument("config: transcode_max_height must be 144 to 2160")
    if not 0 <= cfg.transcode_nice <= 19:
        raise errors.InvalidArgument("config: transcode_nice must be 0 to 19")
    if not 0 <= cfg.archive_follow_interval_sec <= 86400:
        raise errors.InvalidArgument("config: archive_follow_interval_sec must be 0 to 86400")
    if cfg.time_zone is not None:
        from nvr.base.time90k import zone

        try:
            zone(cfg.time_zone)
        except ValueError as e:
            raise errors.InvalidArgument(f"config: time_zone: {e}") from None
    return cfg


def load_config(path: Path | str | None) -> Config:
    """Reads ``path`` (or returns the defaults when it is ``None``)."""
    if path is None:
        return Config(db_dir=Path(os.environ.get("NVR_DB_DIR", DEFAULT_DB_DIR)))
    try:
        with errors.mapped_os_errors(f"reading config {path}"), open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise errors.InvalidArgument(f"config {path}: {e}") from None
    try:
        return parse_config(data)
    except errors.InvalidArgument as e:
        raise errors.InvalidArgument(f"{path}: {e}") from None
