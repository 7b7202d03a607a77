"""``nvr config signal add|list|remove`` and ``nvr config signal-type add|list|remove``.

Like the other configuration commands these change the database directly, with the
daemon stopped. ``signal add`` without ``--type`` uses nvr's motion type (states 1 still,
2 moving), made on first use; ``signal remove`` deletes the signal's history too.
"""

from __future__ import annotations

import argparse

from nvr.base import errors
from nvr.cli.common import Subparsers, db_dir
from nvr.db.database import Database
from nvr.db.signals import RELATIONS, Signal, SignalState
from nvr.offline import admin


def parse_state(text: str) -> SignalState:
    """``VALUE:NAME[:motion][:COLOR]``, e.g. ``2:open:motion:#ff8888``."""
    parts = text.split(":")
    if len(parts) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected VALUE:NAME[:motion][:COLOR]")
    try:
        value = int(parts[0])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be a number") from None
    rest = parts[2:]
    motion = bool(rest) and rest[0] == "motion"
    if motion:
        rest = rest[1:]
    if len(rest) > 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected VALUE:NAME[:motion][:COLOR]")
    return SignalState(value, parts[1], motion, rest[0] if rest else None)


def parse_camera(text: str) -> tuple[str, str]:
    """``CAMERA[:direct|indirect]`` (default direct)."""
    name, sep, relation = text.rpartition(":")
    if sep and name and relation in RELATIONS:
        return name, relation
    return text, "direct"


def _cameras(db: Database, specs: list[tuple[str, str]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for name, relation in specs:
        out[db.camera_by_name(name).id] = relation
    return out


def cmd_signal_add(args: argparse.Namespace) -> int:
    with admin.open_db(db_dir(args)) as db:
        t = db.signal_type_by_name(args.type) if args.type else db.motion_signal_type()
        sig = db.add_signal(args.name, t.id, _cameras(db, args.camera))
        print(f"added signal {sig.short_name} (id {sig.id}, {sig.uuid}) of type {t.short_name}")
    return 0


def _describe(db: Database, sig: Signal) -> str:
    cams = ", ".join(
        f"{db.cameras[c].short_name} ({rel})" for c, rel in sorted(sig.cameras.items())
    )
    last = sig.last_change
    changes = "no changes" if last is None else f"last change to state {last[1]}"
    type_name = db.signal_types[sig.type_id].short_name
    return "\t".join(
        (str(sig.id), sig.short_name, str(sig.uuid), type_name, cams or "no cameras", changes)
    )


def cmd_signal_list(args: argparse.Namespace) -> int:
    with admin.open_db(db_dir(args), read_only=True) as db:
        for sig in db.signals.values():
            print(_describe(db, sig))
    return 0


def cmd_signal_remove(args: argparse.Namespace) -> int:
    with admin.open_db(db_dir(args)) as db:
        db.remove_signal(db.signal_by_name(args.name).id)
    print(f"removed signal {args.name} and its history")
    return 0


def cmd_type_add(args: argparse.Namespace) -> int:
    if not args.state:
        raise errors.InvalidArgument("a signal type needs at least one --state")
    with admin.open_db(db_dir(args)) as db:
        t = db.add_signal_type(args.name, args.state)
    print(f"added signal type {t.short_name} ({t.uuid})")
    return 0


def cmd_type_list(args: argparse.Namespace) -> int:
    with admin.open_db(db_dir(args), read_only=True) as db:
        for t in db.signal_types.values():
            states = ", ".join(
                f"{s.value}:{s.name}" + (":motion" if s.motion else "")
                + (f":{s.color}" if s.color else "")
                for s in t.states
            )  # fmt: skip
            print(f"{t.short_name}\t{t.uuid}\t{states}")
    return 0


def cmd_type_remove(args: argparse.Namespace) -> int:
    with admin.open_db(db_dir(args)) as db:
        db.remove_signal_type(db.signal_type_by_name(args.name).id)
    print(f"removed signal type {args.name}")
    return 0


def add_parsers(what: Subparsers, common: argparse.ArgumentParser) -> None:
    s = what.add_parser("signal", help="signals (motion, door contacts...) and their cameras")
    ssub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ssub.add_parser("add", help="add a signal", parents=[common])
    p.add_argument("name", help="short name, unique (e.g. 'driveway motion')")
    p.add_argument("--type", default=None,
                   help="its signal type's name (default: nvr's motion type: 1 still, 2 moving)")
    p.add_argument("--camera", action="append", default=[], type=parse_camera,
                   metavar="CAMERA[:direct|indirect]",
                   help="a camera it is tied to (repeatable; default relation direct)")
    p.set_defaults(func=cmd_signal_add)
    p = ssub.add_parser("list", help="list signals", parents=[common])
    p.set_defaults(func=cmd_signal_list)
    p = ssub.add_parser("remove", help="remove a signal and its history", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_signal_remove)

    t = what.add_parser("signal-type", help="types of signals: their states")
    tsub = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = tsub.add_parser("add", help="add a signal type", parents=[common])
    p.add_argument("name", help="short name, unique")
    p.add_argument("--state", action="append", default=[], type=parse_state,
                   metavar="VALUE:NAME[:motion][:COLOR]",
                   help="a state (repeatable): value 1-255, name, 'motion' if the state "
                        "means motion, an HTML color (e.g. 2:open:#ff8888)")
    p.set_defaults(func=cmd_type_add)
    p = tsub.add_parser("list", help="list signal types", parents=[common])
    p.set_defaults(func=cmd_type_list)
    p = tsub.add_parser("remove", help="remove an unused signal type", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_type_remove)
