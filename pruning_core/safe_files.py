"""The one way bhpvas reads a file a user named: checked before a single byte is read.

:func:`read_user_file` refuses a path with a NUL byte, resolves symbolic links, applies the
server's data policy (``BHPVAS_DATA_ROOTS``, see :class:`pruning_core.policy.SourcePolicy`) to the
resolved path, opens without following links and without blocking, and refuses anything that is
not a regular file (folders, FIFOs, devices such as ``/dev/zero``) or is larger than ``max_bytes``.
Only then is the file read, and never more than ``max_bytes``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BhpvasError, DataError

if TYPE_CHECKING:
    from .policy import SourcePolicy

DEFAULT_MAX_BYTES = 512 * 1024 * 1024


def user_path(path: str | os.PathLike, error: type[BhpvasError] = DataError) -> Path:
    """``path`` expanded and resolved (symbolic links followed); a NUL byte or an empty path is refused."""
    text = str(os.fspath(path)).strip()
    if not text:
        raise error("No file was named; give the path of a file.")
    if "\x00" in text:
        raise error("The path contains a NUL byte, which no file name can hold; check the path.")
    try:
        return Path(text).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise error(f"Cannot resolve the path {text!r}: {exc}.") from None


def read_user_file(
    path: str | os.PathLike,
    policy: SourcePolicy | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    always_allowed: tuple[Path, ...] = (),
    error: type[BhpvasError] = DataError,
    what: str = "Data file",
) -> bytes:
    """The bytes of the regular file ``path``, after the policy, type and size checks.

    ``policy``: when given, its data roots apply to the resolved path (``always_allowed`` folders,
    such as the upload folder, pass too). Every refusal raises ``error`` with a message that says
    what to fix; a file outside the roots is refused without saying whether it exists.
    """
    resolved = user_path(path, error)
    if policy is not None:
        policy.check_data(str(resolved), always_allowed)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(resolved, flags)
    except FileNotFoundError:
        raise error(f"{what} {resolved} does not exist. Check the path.") from None
    except IsADirectoryError:
        raise error(f"{resolved} is a folder; give a file.") from None
    except PermissionError:
        raise error(f"{what} {resolved} cannot be read (permission denied).") from None
    except OSError as exc:
        raise error(f"{what} {resolved} cannot be opened: {exc.strerror or exc}.") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{resolved} is a folder; give a file.")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{resolved} is not a regular file (a device, pipe or socket); give a file.")
        if info.st_size > max_bytes:
            raise error(f"{what} {resolved.name} is {_size(info.st_size)}; the limit is {_size(max_bytes)}.")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise error(f"{what} {resolved.name} grew beyond the limit of {_size(max_bytes)} while being read.")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{what} {resolved} could not be read: {exc.strerror or exc}.") from None
    finally:
        os.close(fd)


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB"
    if n >= 2**10:
        return f"{n / 2**10:.0f} KiB"
    return f"{n} bytes"
