"""``nvr ts``: 90 kHz timestamps to dates and back."""

from __future__ import annotations

import argparse

from nvr.base import errors
from nvr.base.time90k import format_time, parse_time, zone
from nvr.cli.common import Subparsers


def cmd_ts(args: argparse.Namespace) -> int:
    tz = zone(args.tz)
    for text in args.times:
        try:
            t = parse_time(text, tz)
        except ValueError as e:
            raise errors.InvalidArgument(str(e)) from None
        print(f"{t} = {format_time(t, tz)}")
    return 0


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("ts", help="convert between 90 kHz timestamps and dates")
    p.add_argument("times", nargs="+", metavar="TIME", help="90k integer or ISO 8601 time")
    p.add_argument("--tz", default=None, help="IANA time zone (default: the system's)")
    p.set_defaults(func=cmd_ts)
