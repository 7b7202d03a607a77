"""``nvr config user add|passwd|disable|enable|perms|remove|list`` and ``nvr login``:
users of the web interface and API (changed through the running daemon or in the
database: ``nvr.cli.control``), and sessions for scripts (``nvr login``, the same way)."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from types import EllipsisType

from nvr.base import errors
from nvr.cli import control
from nvr.cli.common import Subparsers, db_dir, read_password
from nvr.offline import admin


def _perms_arg(text: str | None) -> frozenset[str] | None:
    from nvr.db.auth import parse_permissions

    return None if text is None else parse_permissions(text.split(","))


def _new_password(args: argparse.Namespace) -> str | None:
    """The password from ``--password-stdin``, else typed twice at a terminal, else None
    (for ``user add``: no password yet)."""
    password = read_password(args)
    if password is None and args.prompt and sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"new password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise errors.InvalidArgument("the passwords differ")
    if password is not None and not password:
        raise errors.InvalidArgument("the password must not be empty")
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    password = _new_password(args)
    user_id = control.target(db_dir(args)).add_user(
        args.name, password, _perms_arg(args.perms) or frozenset()
    )
    print(f"added user {args.name} (id {user_id})")
    if password is None:
        print(f"it has no password yet: set one with `nvr config user passwd {args.name}`")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    if args.clear:
        control.target(db_dir(args)).set_password(args.name, None)
        print(f"cleared the password of {args.name}: it cannot log in; its sessions ended")
        return 0
    password = _new_password(args)
    if password is None:
        raise errors.InvalidArgument(
            "no password: use --password-stdin, a terminal, or --clear to remove it"
        )
    control.target(db_dir(args)).set_password(args.name, password)
    print(f"changed the password of {args.name}; its sessions ended")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    control.target(db_dir(args)).update_user(args.name, disabled=args.disable)
    if args.disable:
        print(f"disabled user {args.name}; its sessions ended")
    else:
        print(f"enabled user {args.name}")
    return 0


def cmd_user_perms(args: argparse.Namespace) -> int:
    perms = _perms_arg(args.perms) or frozenset()
    cameras: list[str] | EllipsisType | None = ...
    if args.all_cameras:
        cameras = None
    elif args.cameras is not None:
        cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
    if control.daemon_running(db_dir(args)):
        if cameras is not ...:
            raise errors.FailedPrecondition(
                "the daemon runs: stop it to change a user's cameras (--cameras, --all-cameras)"
            )
        control.target(db_dir(args)).update_user(args.name, permissions=perms)
        print(f"user {args.name} now has: {', '.join(sorted(perms)) or 'no permissions'}")
        return 0
    user = admin.update_user(db_dir(args), args.name, permissions=perms, cameras=cameras)
    print(f"user {args.name} now has: {', '.join(sorted(perms)) or 'no permissions'}"
          f"{_on_cameras(args, user.cameras)}")
    return 0


def _on_cameras(args: argparse.Namespace, cameras: frozenset[uuid.UUID] | None) -> str:
    if cameras is None:
        return ", on every camera"
    names = admin.camera_names(db_dir(args), cameras)
    return f", only on cameras: {', '.join(names) or '(none)'}"


def cmd_user_remove(args: argparse.Namespace) -> int:
    control.target(db_dir(args)).remove_user(args.name)
    print(f"removed user {args.name} and its sessions")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from nvr.db.auth import PERMISSIONS

    for user, sessions in admin.list_users(db_dir(args)):
        perms = ",".join(p for p in PERMISSIONS if p in user.permissions) or "-"
        notes = ["password set" if user.password_hash else "no password"]
        if user.disabled:
            notes.append("disabled")
        notes.append(f"{sessions} sessions")
        if user.password_failure_count:
            notes.append(f"{user.password_failure_count} failed logins")
        if user.cameras is not None:
            names = admin.camera_names(db_dir(args), user.cameras)
            notes.append(f"only cameras {','.join(names) or '(none)'}")
        print(f"{user.id}\t{user.username}\t{perms}\t{', '.join(notes)}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from nvr.db.auth import SessionPolicy

    session_id, created = control.target(db_dir(args)).login(
        args.name, _perms_arg(args.perms), args.description
    )
    if args.cookie_jar:
        expires = created + SessionPolicy().max_age_sec
        admin.write_cookie_jar(
            Path(args.cookie_jar), session_id, domain=args.domain, expires_sec=expires
        )
        print(f"wrote a session for {args.name} to {args.cookie_jar}", file=sys.stderr)
    else:
        print(session_id)
    return 0


def add_parsers(what: Subparsers, common: argparse.ArgumentParser) -> None:
    u = what.add_parser("user", help="users of the web interface and API")
    usub = u.add_subparsers(dest="action", required=True, metavar="ACTION")
    perms_help = (
        "comma-separated: viewVideo,readCameraConfigs,updateSignals,adminUsers,protectVideo,"
        "adminConfig,redactVideo"
    )

    def password_stdin(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input "
            "(otherwise it is asked for at a terminal)",
        )
        p.set_defaults(prompt=True)

    p = usub.add_parser("add", help="add a user", parents=[common])
    p.add_argument("name")
    password_stdin(p)
    p.add_argument("--perms", default=None, help=perms_help)
    p.set_defaults(func=cmd_user_add)

    p = usub.add_parser(
        "passwd", help="set a user's password (ends its sessions)", parents=[common]
    )
    p.add_argument("name")
    password_stdin(p)
    p.add_argument("--clear", action="store_true", help="remove the password: no more logins")
    p.set_defaults(func=cmd_user_passwd)

    p = usub.add_parser(
        "disable", help="refuse a user's logins and end its sessions", parents=[common]
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_user_disable, disable=True)

    p = usub.add_parser("enable", help="allow a disabled user again", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_user_disable, disable=False)

    p = usub.add_parser("perms", help="set a user's permissions", parents=[common])
    p.add_argument("name")
    p.add_argument("perms", help=perms_help + ' ("" for none)')
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--cameras", default=None, metavar="A,B",
        help="limit every permission to these cameras (short names or uuids)",
    )
    which.add_argument("--all-cameras", action="store_true", help="lift a camera limit")
    p.set_defaults(func=cmd_user_perms)

    p = usub.add_parser("remove", help="remove a user and its sessions", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_user_remove)

    p = usub.add_parser("list", help="list users", parents=[common])
    p.set_defaults(func=cmd_user_list)


def add_login_parser(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "login",
        help="make a session for a script: prints its id, the value of cookie s",
        parents=[common],
    )
    p.add_argument("name", help="the user the session belongs to")
    p.add_argument(
        "--perms", default=None, help="limit the session to these of the user's permissions"
    )
    p.add_argument("--cookie-jar", default=None, metavar="FILE", help="write a curl cookie jar")
    p.add_argument(
        "--domain",
        default="localhost",
        help="host name the cookie jar's cookie is for (default: localhost)",
    )
    p.add_argument("--description", default="nvr login", help="noted with the session")
    p.set_defaults(func=cmd_login)
