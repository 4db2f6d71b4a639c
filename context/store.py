"""The persisted index: one SQLite database per workspace root.

Why SQLite: atomic transactions (a crash mid-write leaves the previous index intact),
WAL mode so a reader never blocks the writer, a single file per root, and it is in the
standard library. Each row holds what decides whether a file must be parsed again
(size, mtime, content hash) and the extracted symbols, marshalled (``context.symbols``).
The definition names are stored apart, so a warm start builds the name map without
reading any symbols; the symbols of a file are read when someone asks for that file.

The file name comes from a hash of the root path. A ``meta`` table keeps the schema
version: any other version (older or newer code) means the file is rebuilt from scratch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from context.symbols import EXTRACTOR_VERSION

log = logging.getLogger(__name__)

SCHEMA_VERSION = f"2.{EXTRACTOR_VERSION}"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,       -- relative to the root, '/' separators
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash BLOB NOT NULL,          -- blake2b-128 of the bytes
    language TEXT NOT NULL,
    names TEXT NOT NULL,         -- distinct definition names, one per line
    definitions INTEGER NOT NULL,
    symbols BLOB NOT NULL        -- marshal of context.symbols.RawSymbols
);
"""


@dataclass(slots=True)
class StoredFile:
    """One row of the ``files`` table (symbols loaded separately)."""

    path: str  # absolute
    size: int
    mtime_ns: int
    hash: bytes
    language: str
    names: tuple[str, ...]
    definitions: int = 0


def database_path(cache_dir: str, root: str) -> str:
    """Where the database of ``root`` lives inside ``cache_dir``."""
    digest = hashlib.blake2b(root.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(root))
    return os.path.join(cache_dir, f"{name[:40] or 'root'}-{digest}.sqlite3")


class IndexStore:
    """The database of one workspace root. Thread-safe (one connection behind a lock)."""

    def __init__(self, db_path: str, root: str) -> None:
        self.path = db_path
        self.root = root
        self._prefix = root.rstrip(os.sep) + os.sep
        self._lock = threading.Lock()
        self.recovered = False  # a damaged database was set aside and started again
        # The index holds signatures and docstrings of private code: readable by the
        # user only (SQLite gives its -wal and -shm files the database's permissions).
        os.makedirs(os.path.dirname(db_path) or ".", mode=0o700, exist_ok=True)
        self._conn = self._open()

    def _open(self, retry: bool = True) -> sqlite3.Connection:
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            for suffix in ("", "-wal", "-shm"):  # made by an older version: 0644
                if os.path.exists(self.path + suffix):
                    os.chmod(self.path + suffix, 0o600)
        except OSError:
            pass  # sqlite3 reports what is wrong with the path
        conn = sqlite3.connect(
            self.path, timeout=10.0, check_same_thread=False, isolation_level=None
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                if row is not None:
                    log.info(
                        "index schema %s != %s: rebuilding %s", row[0], SCHEMA_VERSION, self.path
                    )
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM files")
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", (self.root,))
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if not retry:
                raise
            # A corrupt or foreign file: the index is a cache, start over.
            self._set_aside(exc)
            return self._open(retry=False)
        return conn

    def _abs(self, rel: str) -> str:
        return self._prefix + rel.replace("/", os.sep)

    def _rel(self, path: str) -> str:
        rel = path[len(self._prefix) :] if path.startswith(self._prefix) else path
        return rel.replace(os.sep, "/")

    def load(self) -> Iterator[StoredFile]:
        """Every stored file, without its symbols."""
        try:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT path, size, mtime_ns, hash, language, names, definitions FROM files"
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            if not self._recover(exc):
                raise
            rows = []  # a new, empty database: the index parses everything again
        for rel, size, mtime_ns, digest, language, names, definitions in rows:
            yield StoredFile(
                self._abs(rel),
                size,
                mtime_ns,
                digest,
                language,
                tuple(names.split("\n")) if names else (),
                definitions,
            )

    def symbols(self, path: str) -> bytes | None:
        """The marshalled symbols of one file, or None if it is not stored."""
        if not storable(path):
            return None
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT symbols FROM files WHERE path=?", (self._rel(path),)
                ).fetchone()
        except sqlite3.DatabaseError as exc:
            if not self._recover(exc):
                raise
            return None
        return bytes(row[0]) if row else None

    def write(
        self,
        upserts: Iterable[tuple[StoredFile, bytes | None]] = (),
        deletes: Iterable[str] = (),
        touches: Iterable[StoredFile] = (),
    ) -> None:
        """Apply changes in one transaction.

        ``upserts``: (row, symbols); ``touches``: rows whose stat changed but not their
        content (only size/mtime are updated); ``deletes``: absolute paths.
        """
        # A file name that is not valid UTF-8 (possible on Linux) cannot be a TEXT key:
        # that file is left out of the store (parsed again at each start), not the others.
        upserts = [(f, blob) for f, blob in upserts if storable(f.path)]
        touches = [f for f in touches if storable(f.path)]
        deletes = [p for p in deletes if storable(p)]
        try:
            self._write(upserts, deletes, touches)
        except sqlite3.DatabaseError as exc:
            if not self._recover(exc):
                raise
            # The rows written before are gone with the damaged file: the index writes
            # them again at its next start (they are not in the new database).
            self._write(upserts, deletes, touches)

    def _recover(self, exc: sqlite3.DatabaseError) -> bool:
        """A damaged database (not a locked or full one): set it aside as
        ``<name>.corrupt`` and start an empty one, saying so once. False when the error
        is not damage (the caller raises it)."""
        if isinstance(exc, sqlite3.OperationalError) and not _damage(exc):
            return False  # locked, read-only, a full disk: not the file's fault
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._set_aside(exc)
            self._conn = self._open(retry=False)
        return True

    def _set_aside(self, exc: sqlite3.Error) -> None:
        """Move the damaged file to ``<name>.corrupt`` (one kept, for a bug report)."""
        aside = self.path + ".corrupt"
        try:
            os.replace(self.path, aside)
        except OSError:
            aside = ""
        for suffix in ("-wal", "-shm") if aside else ("", "-wal", "-shm"):
            try:
                os.remove(self.path + suffix)
            except OSError:
                pass
        log.warning(
            "the index database %s is damaged (%s): %s; the index is rebuilt",
            self.path,
            exc,
            f"set aside as {aside}" if aside else "removed",
        )
        self.recovered = True

    def _write(
        self,
        upserts: list[tuple[StoredFile, bytes | None]],
        deletes: list[str],
        touches: list[StoredFile],
    ) -> None:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            self._rel(f.path),
                            f.size,
                            f.mtime_ns,
                            f.hash,
                            f.language,
                            "\n".join(f.names),
                            f.definitions,
                            blob,
                        )
                        for f, blob in upserts
                        if blob is not None
                    ),
                )
                conn.executemany(
                    "UPDATE files SET size=?, mtime_ns=? WHERE path=?",
                    ((f.size, f.mtime_ns, self._rel(f.path)) for f in touches),
                )
                conn.executemany(
                    "DELETE FROM files WHERE path=?", ((self._rel(p),) for p in deletes)
                )
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk): a second ROLLBACK would
                # raise "no transaction is active" and hide the real error.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def size_on_disk(self) -> int:
        """Bytes used by the database and its WAL."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._conn.close()


def _damage(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def storable(path: str) -> bool:
    """Whether a path can be written as SQLite TEXT (no lone surrogates from undecodable
    file names)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
