"""``nvr config signal add|list|remove`` and ``nvr config signal-type add|list|remove``.

Like the other configuration commands these go to the running daemon's control socket, or
to the database when it is stopped (``nvr.cli.control``), with the same JSON bodies
(docs/api.md, "Configuration (extensions)"); ``list`` reads what is committed, either
way. Names are resolved to uuids and ids here, from what is committed. ``signal add``
without ``--type`` uses nvr's motion type (states 1 still, 2 moving), made on first use;
``signal remove`` deletes the signal's history too.
"""

from __future__ import annotations

import argparse

from nvr.base import errors
from nvr.cli import control
from nvr.cli.common import Subparsers, db_dir
from nvr.db.database import Database
from nvr.db.signals import RELATIONS, Signal, SignalState


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


def cmd_signal_add(args: argparse.Namespace) -> int:
    to = control.target(db_dir(args))
    body = {
        "shortName": args.name,
        "cameras": {to.camera(name).uuid: relation for name, relation in args.camera},
    }
    if args.type:
        body["type"] = args.type
    out = to.add_signal(body)
    with control.peek(db_dir(args)) as db:
        type_name = next(t.short_name for t in db.signal_types.values()
                         if str(t.uuid) == out["type"])  # fmt: skip
    print(f"added signal {args.name} (id {out['id']}, {out['uuid']}) of type {type_name}")
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
    with control.peek(db_dir(args)) as db:
        for sig in db.signals.values():
            print(_describe(db, sig))
    return 0


def cmd_signal_remove(args: argparse.Namespace) -> int:
    with control.peek(db_dir(args)) as db:
        signal_id = db.signal_by_name(args.name).id
    control.target(db_dir(args)).remove_signal(signal_id)
    print(f"removed signal {args.name} and its history")
    return 0


def cmd_type_add(args: argparse.Namespace) -> int:
    if not args.state:
        raise errors.InvalidArgument("a signal type needs at least one --state")
    states = [{"value": s.value, "name": s.name, "motion": s.motion, "color": s.color}
              for s in args.state]  # fmt: skip
    out = control.target(db_dir(args)).add_signal_type({"shortName": args.name, "states": states})
    print(f"added signal type {args.name} ({out['uuid']})")
    return 0


def cmd_type_list(args: argparse.Namespace) -> int:
    with control.peek(db_dir(args)) as db:
        for t in db.signal_types.values():
            states = ", ".join(
                f"{s.value}:{s.name}" + (":motion" if s.motion else "")
                + (f":{s.color}" if s.color else "")
                for s in t.states
            )  # fmt: skip
            print(f"{t.short_name}\t{t.uuid}\t{states}")
    return 0


def cmd_type_remove(args: argparse.Namespace) -> int:
    with control.peek(db_dir(args)) as db:
        type_uuid = str(db.signal_type_by_name(args.name).uuid)
    control.target(db_dir(args)).remove_signal_type(type_uuid)
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
