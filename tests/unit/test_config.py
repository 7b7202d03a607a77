"""The daemon's TOML settings: defaults, the example file, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvr.base import errors
from nvr.config import BindConfig, Config, load_config, parse_address, parse_config
from tests.support.paths import REPO

EXAMPLE = REPO / "conf" / "nvr.example.toml"


def test_example_file_gives_the_defaults() -> None:
    assert load_config(EXAMPLE) == Config()


def test_values_are_read() -> None:
    cfg = parse_config(
        {
            "db_dir": "/srv/nvr/db",
            "time_zone": "Europe/Berlin",
            "worker_threads": 8,
            "rotate_interval_sec": 30,
            "read_timeout_sec": 2.5,
            "connect_timeout_sec": 7,
            "log_format": "json",
            "watchdog_syncer_stuck_sec": 120,
            "watchdog_loop_blocked_sec": 0,
            "binds": [
                {"address": "[::]:0", "allow_unauthenticated": ["viewVideo"],
                 "allowed_hosts": ["nvr.example.com", "nvr"]},
                {"address": "unix:/run/nvr.sock", "trust_forward_headers": True},
                {"address": "127.0.0.1:9180", "metrics": True},
            ],
        }
    )
    assert cfg.db_dir == Path("/srv/nvr/db")
    assert (cfg.time_zone, cfg.worker_threads, cfg.rotate_interval_sec) == ("Europe/Berlin", 8, 30)
    assert cfg.read_timeout_sec == 2.5 and cfg.log_format == "json"
    assert cfg.connect_timeout_sec == 7
    assert (cfg.watchdog_syncer_stuck_sec, cfg.watchdog_loop_blocked_sec) == (120, 0)
    assert cfg.binds == (
        BindConfig("[::]:0", ("viewVideo",), allowed_hosts=("nvr.example.com", "nvr")),
        BindConfig("unix:/run/nvr.sock", (), True),
        BindConfig("127.0.0.1:9180", metrics=True),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"db_dri": "/x"}, "unknown key 'db_dri'"),
        ({"worker_threads": "8"}, "worker_threads must be an integer"),
        ({"worker_threads": True}, "worker_threads must be an integer"),
        ({"worker_threads": 0}, "worker_threads must be at least 1"),
        ({"rotate_interval_sec": 300}, "rotate_interval_sec must be 1 to 240"),
        ({"log_format": "xml"}, "log_format"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"binds": [{"address": "localhost"}]}, "is not host:port"),
        ({"binds": [{"address": "unix:relative"}]}, "must be absolute"),
        ({"binds": [{"adress": "x:1"}]}, "unknown key binds[0].adress"),
        ({"binds": [{"allow_unauthenticated": ["watch"]}]}, "unknown permission 'watch'"),
        ({"binds": [{"tls_cert": "/c.pem"}]}, "needs both tls_cert and tls_key"),
        ({"binds": {"address": "x:1"}}, "binds must be a list"),
        ({"binds": [{"metrics": "yes"}]}, "binds[0].metrics must be true or false"),
        ({"binds": [{"allowed_hosts": "nvr"}]}, "binds[0].allowed_hosts must be a list"),
        ({"binds": [{"allowed_hosts": ["nvr:8080"]}]}, "'nvr:8080' is not a host name"),
        ({"binds": [{"allowed_hosts": ["http://nvr"]}]}, "is not a host name"),
        ({"binds": [{"allowed_hosts": [""]}]}, "is not a host name"),
        ({"watchdog_syncer_stuck_sec": -1}, "watchdog_syncer_stuck_sec must not be negative"),
        ({"watchdog_streamer_stuck_sec": -0.5}, "watchdog_streamer_stuck_sec must not be"),
        ({"read_timeout_sec": 200}, "watchdog_streamer_stuck_sec must be 0 or at least twice"),
        ({"connect_timeout_sec": 0}, "connect_timeout_sec must be 0.1 to 600"),
        ({"connect_timeout_sec": 151}, "twice the larger of read_timeout_sec + 5 s and conn"),
        ({"watchdog_thread_hung_sec": -1}, "watchdog_thread_hung_sec must not be negative"),
        ({"watchdog_loop_blocked_sec": "30"}, "watchdog_loop_blocked_sec must be"),
    ],
)
def test_mistakes_are_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        parse_config(data)
    assert message in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("rotate_interval_sec = [")
    with pytest.raises(errors.InvalidArgument, match=str(bad)):
        load_config(bad)
    with pytest.raises(errors.NotFound):
        load_config(tmp_path / "missing.toml")


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:0") == ("::1", 0)
    assert parse_address("unix:/run/x.sock") == "/run/x.sock"
    with pytest.raises(errors.InvalidArgument):
        parse_address("127.0.0.1:99999")


def test_transcode_settings_are_read_and_bounded() -> None:
    cfg = parse_config({"transcode_max_concurrent": 0, "transcode_max_height": 480,
                        "transcode_nice": 19})
    assert (cfg.transcode_max_concurrent, cfg.transcode_max_height, cfg.transcode_nice) == (
        0, 480, 19)
    for key, value, message in [
        ("transcode_max_concurrent", -1, "transcode_max_concurrent must be 0 to 64"),
        ("transcode_max_height", 100, "transcode_max_height must be 144 to 2160"),
        ("transcode_nice", 20, "transcode_nice must be 0 to 19"),
        ("transcode_nice", "5", "transcode_nice"),
    ]:
        with pytest.raises(errors.InvalidArgument, match=message):
            parse_config({key: value})
