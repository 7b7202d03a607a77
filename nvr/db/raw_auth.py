"""Raw SQL of users and sessions.

Same rules as ``nvr.db.raw``: functions take a ``sqlite3.Connection``, run SQL and return
plain rows or values; they do not commit and keep no state.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

_USER_COLUMNS = """id, username, config, password_hash, password_id, password_failure_count,
    permissions"""


def list_users(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(f"select {_USER_COLUMNS} from user order by id").fetchall()


def get_user(conn: sqlite3.Connection, user_id: int) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        f"select {_USER_COLUMNS} from user where id = ?", (user_id,)
    ).fetchone()
    return row


def get_user_by_name(conn: sqlite3.Connection, username: str) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        f"select {_USER_COLUMNS} from user where username = ?", (username,)
    ).fetchone()
    return row


def insert_user(
    conn: sqlite3.Connection,
    username: str,
    config: str,
    password_hash: str | None,
    permissions: str,
) -> int:
    cur = conn.execute(
        """insert into user (username, config, password_hash, permissions)
           values (?, ?, ?, ?)""",
        (username, config, password_hash, permissions),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def update_user(
    conn: sqlite3.Connection, user_id: int, username: str, config: str, permissions: str
) -> None:
    conn.execute(
        "update user set username = ?, config = ?, permissions = ? where id = ?",
        (username, config, permissions, user_id),
    )


def set_user_password(conn: sqlite3.Connection, user_id: int, password_hash: str | None) -> None:
    """Sets the hash (NULL: no password login) and bumps ``password_id``."""
    conn.execute(
        "update user set password_hash = ?, password_id = password_id + 1 where id = ?",
        (password_hash, user_id),
    )


def rehash_user_password(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    """Replaces the hash of the same password (stronger parameters): ``password_id`` stays."""
    conn.execute("update user set password_hash = ? where id = ?", (password_hash, user_id))


def count_password_failure(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute(
        "update user set password_failure_count = password_failure_count + 1 where id = ?",
        (user_id,),
    )


def delete_user(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("delete from user_session where user_id = ?", (user_id,))
    conn.execute("delete from user where id = ?", (user_id,))


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A ``user_session`` row as a new session inserts it."""

    session_id_hash: bytes
    user_id: int
    seed: bytes
    flags: int
    domain: str | None
    description: str | None
    creation_password_id: int
    creation_time_sec: int
    creation_user_agent: str | None
    creation_peer_addr: str | None
    permissions: str


def insert_session(conn: sqlite3.Connection, s: SessionRow) -> None:
    conn.execute(
        """insert into user_session
             (session_id_hash, user_id, seed, flags, domain, description,
              creation_password_id, creation_time_sec, creation_user_agent,
              creation_peer_addr, permissions)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            s.session_id_hash, s.user_id, s.seed, s.flags, s.domain, s.description,
            s.creation_password_id, s.creation_time_sec, s.creation_user_agent,
            s.creation_peer_addr, s.permissions,
        ),
    )


def get_session(conn: sqlite3.Connection, session_id_hash: bytes) -> tuple[Any, ...] | None:
    """(user_id, seed, flags, creation_time_sec, revocation_time_sec, last_use_time_sec,
    use_count, permissions) of one session."""
    row: tuple[Any, ...] | None = conn.execute(
        """select user_id, seed, flags, creation_time_sec, revocation_time_sec,
                  last_use_time_sec, use_count, permissions
           from user_session where session_id_hash = ?""",
        (session_id_hash,),
    ).fetchone()
    return row


def note_session_use(
    conn: sqlite3.Connection,
    session_id_hash: bytes,
    time_sec: int,
    user_agent: str | None,
    peer_addr: str | None,
    uses: int,
) -> None:
    conn.execute(
        """update user_session set last_use_time_sec = ?, last_use_user_agent = ?,
                  last_use_peer_addr = ?, use_count = use_count + ?
           where session_id_hash = ?""",
        (time_sec, user_agent, peer_addr, uses, session_id_hash),
    )


def revoke_session(
    conn: sqlite3.Connection,
    session_id_hash: bytes,
    time_sec: int,
    user_agent: str | None,
    peer_addr: str | None,
    reason: int,
    detail: str | None,
) -> None:
    conn.execute(
        """update user_session set revocation_time_sec = ?, revocation_user_agent = ?,
                  revocation_peer_addr = ?, revocation_reason = ?,
                  revocation_reason_detail = ?
           where session_id_hash = ? and revocation_time_sec is null""",
        (time_sec, user_agent, peer_addr, reason, detail, session_id_hash),
    )


def revoke_user_sessions(
    conn: sqlite3.Connection,
    user_id: int,
    time_sec: int,
    reason: int,
    detail: str | None,
    keep_hash: bytes | None,
) -> int:
    """Revokes every live session of the user except ``keep_hash``; returns how many."""
    cur = conn.execute(
        """update user_session set revocation_time_sec = ?, revocation_reason = ?,
                  revocation_reason_detail = ?
           where user_id = ? and revocation_time_sec is null and session_id_hash is not ?""",
        (time_sec, reason, detail, user_id, keep_hash),
    )
    return cur.rowcount


def count_live_sessions(conn: sqlite3.Connection) -> dict[int, int]:
    """Unrevoked sessions per user id."""
    return dict(
        conn.execute(
            """select user_id, count(*) from user_session
               where revocation_time_sec is null group by user_id"""
        ).fetchall()
    )
