"""What the index writes to disk: one SQLite store per workspace root (``context.store``),
opened on first use, and the changes a build or an update has not written yet.

A store that cannot be opened leaves the index working in memory; a write that fails
(a full disk, a removed folder) is said once per failure, not once per file, and said
again when writing works again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from context.store import IndexStore, StoredFile, database_path

log = logging.getLogger(__name__)


@dataclass
class RootChanges:
    """The rows of one root to write in one transaction."""

    upserts: list[tuple[StoredFile, bytes | None]] = field(default_factory=list)
    touches: list[StoredFile] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)


@dataclass
class Changes:
    """What a build or an update changed, per root, not yet persisted (one transaction
    per root each time it is saved), and the counts of what was merged."""

    roots: dict[str, RootChanges] = field(default_factory=dict)
    parsed: int = 0
    read_as_text: int = 0
    same: int = 0
    skipped: int = 0

    def of(self, root: str) -> RootChanges:
        return self.roots.setdefault(root, RootChanges())

    def clear_rows(self) -> None:
        """Forget the rows (written); the counts go on."""
        for change in self.roots.values():
            change.upserts.clear()
            change.touches.clear()
            change.deletes.clear()


class Persistence:
    """The stores of an index's roots under ``cache_dir`` ("" = keep nothing on disk)."""

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._stores: dict[str, IndexStore | None] = {}
        self._save_failed: set[str] = set()  # roots whose last save failed (said once)

    def store(self, root: str) -> IndexStore | None:
        """The store of ``root`` (opened once), or None without persistence."""
        with self._lock:
            if root not in self._stores:
                store = None
                if self.cache_dir:
                    try:
                        store = IndexStore(database_path(self.cache_dir, root), root)
                    except Exception as exc:  # the index works without persistence
                        log.warning("index cache unavailable in %s: %s", self.cache_dir, exc)
                self._stores[root] = store
            return self._stores[root]

    def write(self, changes: Changes) -> list[StoredFile]:
        """Write the changes of each root in one transaction; the upserted rows that were
        saved (their symbols can be read back from the store)."""
        saved: list[StoredFile] = []
        for root, change in changes.roots.items():
            store = self.store(root) if root else None
            if store is None or not (change.upserts or change.touches or change.deletes):
                continue
            try:
                store.write(change.upserts, change.deletes, change.touches)
            except Exception as exc:
                # Once per failure, not once per file saved (a full disk, a removed folder):
                # the index goes on in memory.
                if root not in self._save_failed:
                    self._save_failed.add(root)
                    log.warning("cannot save the index of %s: %s (kept in memory)", root, exc)
                continue
            if root in self._save_failed:
                self._save_failed.discard(root)
                log.info("the index of %s is saved again", root)
            saved.extend(row for row, _ in change.upserts)
        return saved

    def delete(self, root: str, paths: list[str]) -> None:
        """Remove the rows of deleted files."""
        store = self.store(root) if root else None
        if store is not None:
            try:
                store.write(deletes=paths)
            except Exception as exc:
                log.warning("cannot update the index of %s: %s", root, exc)

    def opened(self) -> list[IndexStore]:
        """The stores opened so far."""
        with self._lock:
            return [s for s in self._stores.values() if s is not None]

    def close(self) -> None:
        """Close every store opened."""
        for store in self.opened():
            try:
                store.close()
            except Exception as exc:
                log.debug("closing %s: %s", store.path, exc)
