"""Exit with the editor: LSP's `processId` is the client process, and a server whose
client died (a crash, `kill -9`, a closed terminal) must not stay behind holding the model
in memory. Checked every few seconds from a daemon thread."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_EVERY_S = 3.0


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (True when this cannot be known)."""
    if pid <= 0:
        return True
    if sys.platform == "win32":
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: only checks
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        return True
    return True


def _windows_alive(pid: int) -> bool:
    import ctypes

    synchronize, wait_timeout = 0x00100000, 0x00000102
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
    handle = kernel32.OpenProcess(synchronize, False, pid)
    if not handle:
        return False
    try:
        return bool(kernel32.WaitForSingleObject(handle, 0) == wait_timeout)
    finally:
        kernel32.CloseHandle(handle)


def watch_parent(pid: int, on_exit: Callable[[], None], every_s: float = CHECK_EVERY_S) -> None:
    """Call `on_exit` (from a daemon thread) once process `pid` has ended."""
    if not process_alive(pid):
        log.warning("processId %d does not run: not watching it", pid)
        return

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(every_s):
            if not process_alive(pid):
                on_exit()
                return

    threading.Thread(target=watch, name="qwen-lsp-parent-watch", daemon=True).start()
