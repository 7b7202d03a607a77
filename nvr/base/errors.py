"""The NvrError tree.

Every library error (``sqlite3.*``, ``OSError``, ``av.error.*``) is mapped to one of these
at the boundary of the module that called the library, so upper layers handle a small,
closed set of kinds. The web layer maps each kind to an HTTP status in one place.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class NvrError(Exception):
    """Base of all errors nvr raises on purpose. ``str(err)`` is a one-line reason."""


class InvalidArgument(NvrError):
    """The caller asked for something malformed (bad flag, bad query, bad input file)."""


class NotFound(NvrError):
    """The named thing (camera, stream, recording, user, file) does not exist."""


class AlreadyExists(NvrError):
    """Creating something that is already there (a database, a camera name, a file)."""


class FailedPrecondition(NvrError):
    """The system is not in a state that allows this (wrong schema version, a
    sample-file directory that belongs to another database, a precondition mismatch)."""


class Unauthenticated(NvrError):
    """No valid session or credentials."""


class PermissionDenied(NvrError):
    """Authenticated, but not allowed to do this."""


class ResourceExhausted(NvrError):
    """Out of something: disk space (ENOSPC), file descriptors (EMFILE), memory, a rate
    limit, a bounded queue."""


class Unavailable(NvrError):
    """Transient: a camera that does not answer, a locked database, a stuck syncer."""


class DataLoss(NvrError):
    """Stored data is corrupt or missing (a short sample file, an index that does not decode)."""


class Internal(NvrError):
    """A bug or an unexpected library failure (EIO and friends land here)."""


def from_os_error(err: OSError, what: str) -> NvrError:
    """Maps an ``OSError`` raised while doing ``what`` to the matching kind.

    The original error stays attached as ``__cause__`` when the caller uses
    ``raise from_os_error(e, ...) from e``.
    """
    msg = f"{what}: {err.strerror or err}"
    code = err.errno
    # disk space, and descriptors or kernel memory ("Too many open files")
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                errno.ENOMEM):
        return ResourceExhausted(msg)
    if code == errno.ENOENT:
        return NotFound(msg)
    if code == errno.EEXIST:
        return AlreadyExists(msg)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(msg)
    if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
        return Unavailable(msg)
    return Internal(msg)


def first_leaf(group: BaseExceptionGroup[E]) -> E:
    """The first exception of ``group`` that is not itself a group, however deeply nested
    (trio's nurseries wrap what their tasks raised)."""
    leaf: E | BaseExceptionGroup[E] = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


@contextlib.contextmanager
def mapped_os_errors(what: str) -> Iterator[None]:
    """Within the block, an ``OSError`` is raised as its ``NvrError`` kind
    (``from_os_error(e, what)``, with the ``OSError`` as its cause). Catch the ``OSError``
    subclasses a caller handles itself (``FileNotFoundError``...) inside the block."""
    try:
        yield
    except OSError as e:
        raise from_os_error(e, what) from e
