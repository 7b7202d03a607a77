"""``nvr run``: the daemon, with its settings from the config file and the command line,
and logging set up the way the settings say."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from nvr.cli.common import Subparsers, explicit_db_dir
from nvr.config import BindConfig, Config, load_config, parse_address


def load_run_config(args: argparse.Namespace) -> Config:
    """The config file's settings (or the defaults), with ``--db-dir`` and ``--http``
    taking precedence."""
    cfg = load_config(args.config)
    explicit = explicit_db_dir(args)
    if explicit:
        cfg = replace(cfg, db_dir=Path(explicit))
    if getattr(args, "http", None):
        # one bind at that address, otherwise as the config's first bind (or the default)
        parse_address(args.http, where="--http")
        first = cfg.binds[0] if cfg.binds else BindConfig()
        cfg = replace(cfg, binds=(replace(first, address=args.http),))
    return cfg


#: a text log line; a terminal or a file gets the time in front, systemd's journal (which
#: stamps each line itself) does not
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def text_format(environ: Mapping[str, str]) -> str:
    """The text log format: with timestamps unless under journald (which sets
    ``JOURNAL_STREAM`` for the services whose output it takes)."""
    return TEXT_FORMAT if environ.get("JOURNAL_STREAM") else "%(asctime)s " + TEXT_FORMAT


def setup_logging(level: str, fmt: str) -> None:
    if fmt == "json":
        import json

        class JsonFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                out = {
                    "level": record.levelname.lower(),
                    "logger": record.name,
                    "msg": record.getMessage(),
                }
                if record.exc_info:
                    out["exc"] = self.formatException(record.exc_info)
                return json.dumps(out)

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    else:
        logging.basicConfig(level=level.upper(), format=text_format(os.environ), force=True)


def cmd_run(args: argparse.Namespace) -> int:
    import trio

    from nvr import daemon

    cfg = load_run_config(args)
    setup_logging(cfg.log_level, cfg.log_format)
    trio.run(lambda: daemon.run(cfg, read_only=args.read_only))
    return 0


def add_parser(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", help="record and serve (the daemon)", parents=[common])
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="daemon settings (TOML; see conf/nvr.example.toml)",
    )
    p.add_argument(
        "--read-only", action="store_true", help="open the database read-only: do not record"
    )
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=None,
        help="serve on this address instead of the config's binds (port 0: any free port)",
    )
    p.set_defaults(func=cmd_run)
