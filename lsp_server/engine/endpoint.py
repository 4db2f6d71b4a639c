"""Where the engine process listens, and who may talk to it.

The engine process serves one user: its socket is a Unix domain socket in a folder that
only that user can enter (0700), the socket itself 0600, and every connection's peer
credentials are checked (SO_PEERCRED on Linux, `getpeereid` on macOS and the BSDs): a
process of another user is refused even when the folder's permissions were loosened.
Nothing listens on a network port.

Files in the folder, per engine (`KEY` names the model and its load settings):
`engine-KEY.sock` the socket, `engine-KEY.lock` taken while a server starts the engine
(so that two servers starting at once start one engine), `engine-KEY.pid` held by the
running engine for its whole life (a second engine for the same key exits at once), and
`engine-KEY.log` the engine's log.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import socket
import stat
import struct
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from lsp_server.engine.types import EngineUnreachable

# sun_path holds 108 bytes on Linux, 104 on macOS (with the terminating NUL).
MAX_SOCKET_PATH = 100
RUNTIME_DIR_ENV = "QWEN_LSP_RUNTIME_DIR"

__all__ = ["EngineUnreachable", "Endpoint"]  # (the engine process cannot be started or reached)


def supported() -> bool:
    """Whether this platform has Unix domain sockets (not Windows' Python)."""
    return hasattr(socket, "AF_UNIX") and sys.platform != "win32"


def runtime_dir() -> str:
    """The user's runtime folder for qwen-lsp: `$QWEN_LSP_RUNTIME_DIR`, else
    `$XDG_RUNTIME_DIR/qwen-lsp`, else the platform's (macOS: under ~/Library/Caches;
    Linux without XDG_RUNTIME_DIR: /tmp/qwen-lsp-UID)."""
    explicit = os.environ.get(RUNTIME_DIR_ENV)
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "qwen-lsp")
    if sys.platform == "darwin":
        import platformdirs

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(platformdirs.user_runtime_dir("qwen-lsp"))
    return os.path.join(tempfile.gettempdir(), f"qwen-lsp-{os.getuid()}")


def ensure_private_dir(path: str) -> str:
    """Create `path` (0700) or check that it is ours and private; EngineUnreachable when
    it is not (another user made it first, or it is a link)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise EngineUnreachable(
            f"cannot create the engine's folder {path}: {exc.strerror or exc}"
        ) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise EngineUnreachable(f"the engine's folder {path} is not a folder (a link?)")
    if st.st_uid != os.getuid():
        raise EngineUnreachable(
            f"the engine's folder {path} belongs to another user (uid {st.st_uid}): "
            f"set ${RUNTIME_DIR_ENV} to a folder of yours"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def engine_key(identity: dict[str, object]) -> str:
    """A short name for an engine: the same model, load settings and protocol give the
    same key, so the servers that agree on them share one engine."""
    data = json.dumps(identity, sort_keys=True).encode()
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The files of one engine in the runtime folder."""

    folder: str
    key: str

    @classmethod
    def for_key(cls, key: str, folder: str | None = None) -> Endpoint:
        endpoint = cls(folder or runtime_dir(), key)
        if len(endpoint.socket_path) > MAX_SOCKET_PATH:
            raise EngineUnreachable(
                f"the engine's socket path is too long for the system ({endpoint.socket_path}): "
                f"set ${RUNTIME_DIR_ENV} to a shorter folder"
            )
        return endpoint

    def _file(self, ext: str) -> str:
        return os.path.join(self.folder, f"engine-{self.key}.{ext}")

    @property
    def socket_path(self) -> str:
        return self._file("sock")

    @property
    def lock_path(self) -> str:
        return self._file("lock")

    @property
    def pid_path(self) -> str:
        return self._file("pid")

    @property
    def log_path(self) -> str:
        return self._file("log")


def list_endpoints(folder: str | None = None) -> list[Endpoint]:
    """The engines that have a socket in the runtime folder (running or stale)."""
    folder = folder or runtime_dir()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [
        Endpoint(folder, name[len("engine-") : -len(".sock")])
        for name in names
        if name.startswith("engine-") and name.endswith(".sock")
    ]


def connect(endpoint: Endpoint, timeout: float = 5.0) -> socket.socket:
    """A connection to the engine's socket (OSError when nothing listens there)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(endpoint.socket_path)
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)
    return sock


def listen(endpoint: Endpoint) -> socket.socket:
    """Bind the engine's socket, readable and writable by the user only (created so:
    no moment where it is open to others), replacing a stale one."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(endpoint.socket_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(endpoint.socket_path)
    finally:
        os.umask(old)
    os.chmod(endpoint.socket_path, 0o600)
    sock.listen(64)
    return sock


@contextlib.contextmanager
def file_lock(path: str, *, wait_s: float | None = None) -> Iterator[bool]:
    """An exclusive lock on `path` (created 0600) for the `with` block; yields False when
    it could not be had within `wait_s` (None: wait as long as it takes)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline is not None else 0))
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if deadline is None or time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.02)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def hold_lock(path: str) -> int | None:
    """Take an exclusive lock on `path` for the life of the process (the fd is kept
    open); None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def peer_uid(sock: socket.socket) -> int | None:
    """The user id of the process at the other end of a Unix socket (None if the
    platform cannot say)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return int(uid)
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    getpeereid = getattr(libc, "getpeereid", None)
    if getpeereid is None:
        return None
    uid, gid = ctypes.c_uint32(), ctypes.c_uint32()
    if getpeereid(sock.fileno(), ctypes.byref(uid), ctypes.byref(gid)) != 0:
        return None
    return int(uid.value)


def peer_allowed(uid: int | None, own_uid: int | None = None) -> bool:
    """Only the engine's own user may use it; a peer whose user cannot be known is refused."""
    return uid is not None and uid == (os.getuid() if own_uid is None else own_uid)
