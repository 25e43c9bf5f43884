"""SFTP paths to names below an account's root directory (pure).

Every path is taken relative to the account's root, which is its ``/``: a leading
``/`` is dropped, ``.`` and empty components are skipped, and ``..`` goes up one
directory but never above the root (as a chroot), so no path reaches outside it.
Each name is checked: UTF-8, no NUL or other control characters, no ``/``, at most
MAX_NAME_BYTES bytes; paths are bounded in length and depth.
"""

from shoal.errors import CallerError

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_DEPTH = 64


class BadPathError(CallerError):
    """A path or name the SFTP server refuses (the message never holds a cap)."""


def check_name(name: str) -> str:
    """`name` if it may be a directory entry's name, else BadPathError."""
    if name in ("", ".", ".."):
        raise BadPathError(f"{name!r} is not a file name")
    if "/" in name or "\\" in name:
        raise BadPathError("a file name holds no slash")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadPathError("a file name holds no control characters")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise BadPathError(f"a file name is at most {MAX_NAME_BYTES} bytes")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadPathError("a file name is UTF-8") from None
    return name


def split_path(path: bytes | str) -> tuple[str, ...]:
    """The names from the root to the path's target (empty: the root itself)."""
    if isinstance(path, bytes):
        if len(path) > MAX_PATH_BYTES:
            raise BadPathError(f"a path is at most {MAX_PATH_BYTES} bytes")
        try:
            path = path.decode("utf-8")
        except UnicodeDecodeError:
            raise BadPathError("a path is UTF-8") from None
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadPathError(f"a path is at most {MAX_PATH_BYTES} bytes")
    names: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if names:
                names.pop()
            continue
        names.append(check_name(part))
        if len(names) > MAX_DEPTH:
            raise BadPathError(f"a path is at most {MAX_DEPTH} directories deep")
    return tuple(names)


def join_path(names: tuple[str, ...]) -> str:
    """The canonical absolute path of `names` (what realpath answers)."""
    return "/" + "/".join(names)
