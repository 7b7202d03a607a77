"""The error tree's helpers (``nvr.base.errors``)."""

from __future__ import annotations

import errno

import pytest

from nvr.base import errors


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (errno.ENOSPC, errors.ResourceExhausted),
        (errno.ENOENT, errors.NotFound),
        (errno.EEXIST, errors.AlreadyExists),
        (errno.EACCES, errors.PermissionDenied),
        (errno.EBUSY, errors.Unavailable),
        (errno.EIO, errors.Internal),
    ],
)
def test_mapped_os_errors_raises_the_kind_with_the_os_error_as_cause(
    code: int, kind: type[errors.NvrError]
) -> None:
    with pytest.raises(kind) as raised, errors.mapped_os_errors("writing x"):
        raise OSError(code, "some reason")
    assert str(raised.value) == "writing x: some reason"
    assert isinstance(raised.value.__cause__, OSError)


def test_mapped_os_errors_lets_other_errors_and_handled_ones_through() -> None:
    with pytest.raises(ValueError), errors.mapped_os_errors("x"):
        raise ValueError("not an OSError")
    with errors.mapped_os_errors("x"):
        try:
            raise FileNotFoundError(errno.ENOENT, "gone")
        except FileNotFoundError:
            pass  # handled inside the block: nothing raised


def test_first_leaf_finds_the_first_exception_however_nested() -> None:
    first, second = OSError(errno.EADDRINUSE, "in use"), OSError(errno.EACCES, "denied")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [first, second]), second])
    assert errors.first_leaf(group) is first
    assert errors.first_leaf(ExceptionGroup("one", [second])) is second
