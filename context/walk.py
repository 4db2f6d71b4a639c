"""Find the source files of a workspace root.

What is skipped, and why:

- paths matched by ``.gitignore`` files at any level (git's rules: the deepest file and
  the last matching pattern win, ``!`` re-includes, an ignored folder is not entered),
  by ``.git/info/exclude``, and by the ``exclude`` globs given to the walker (same
  syntax, relative to the root, always win);
- folders that hold vendored or generated code (``SKIP_DIRS``), Python virtual
  environments wherever they are (a ``pyvenv.cfg`` inside), and nested repositories'
  ``.git`` folders;
- files with no supported language (``context.languages``), minified bundles, files
  over ``max_file_size`` (binary files are recognised when read: a NUL byte in the
  first 8 KB);
- symbolic links whose target is outside the root; a linked folder inside the root is
  entered once (its real path), so link cycles end;
- anything but a regular file (a FIFO named ``x.py`` would block whoever opens it).

Paths are real paths (``os.path.realpath``); the root is resolved once and only links
are resolved again, so the walk costs one ``scandir`` per folder and one ``stat`` per file.
"""

from __future__ import annotations

import logging
import operator
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pathspec

from context.languages import PROJECT_FILES, language_for_name

log = logging.getLogger(__name__)

# Folders never indexed, by name. `vendor` holds Go (and PHP/Ruby) dependencies,
# `third_party` vendored sources; `target` is Cargo's and Maven's output, `out` is not
# here because it is a common source folder name too.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".jj",
        "node_modules",
        "bower_components",
        "jspm_packages",
        ".venv",
        "venv",
        ".virtualenv",
        "__pypackages__",
        "site-packages",
        ".eggs",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".pytype",
        ".pyre",
        ".hypothesis",
        "target",
        "dist",
        "build",
        "_build",
        ".gradle",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".angular",
        ".turbo",
        ".parcel-cache",
        ".cache",
        ".yarn",
        ".pnpm-store",
        "coverage",
        "htmlcov",
        "vendor",
        "third_party",
        "Pods",
        "DerivedData",
        ".terraform",
        ".direnv",
        ".idea",
        ".vscode",
        ".vs",
        "bazel-out",
        "bazel-bin",
        "bazel-testlogs",
        "cmake-build-debug",
        "cmake-build-release",
        "CMakeFiles",
        "elm-stuff",
        ".stack-work",
        "zig-cache",
        "zig-out",
    }
)


DEFAULT_MAX_FILE_SIZE = 1_000_000

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def read_regular(path: str, limit: int) -> tuple[bytes | None, os.stat_result | None]:
    """Read a workspace file safely: ``(bytes, stat)``, or ``(None, stat)`` when it is not
    a regular file or is over ``limit`` bytes, or ``(None, None)`` when it cannot be opened.

    The open does not block (a plain ``open`` of a FIFO waits for a writer forever) and
    the read stops at ``limit`` (a file that grew after its stat is refused, not read whole).
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None, None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None, st
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, max(st.st_size, 1 << 16) + 1))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return (None, st) if len(data) > limit else (data, st)
    except OSError:
        return None, None
    finally:
        os.close(fd)


def read_text(path: str, limit: int = DEFAULT_MAX_FILE_SIZE, encoding: str = "utf-8") -> str | None:
    """A small workspace text file (``.gitignore``, ``go.mod``, ``tsconfig.json``), or None."""
    data, _ = read_regular(path, limit)
    return None if data is None else data.decode(encoding, "replace")


@dataclass(frozen=True, slots=True)
class WalkEntry:
    """A candidate source file found by the walk (not read yet)."""

    path: str
    language: str
    size: int
    mtime_ns: int


def invalid_pattern(line: str) -> bool:
    """Whether a `.gitignore`-style pattern cannot be read (e.g. the range `[z-a]`)."""
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except Exception:
        return True
    return False


class IgnoreFile:
    """The patterns of one ``.gitignore`` (or exclude list), matched like git does.

    pathspec parses the patterns; matching first tries one regex made of all of them,
    because most files match none and a per-pattern loop costs ~20 us a file.
    """

    __slots__ = ("patterns", "_any")

    def __init__(self, lines: Sequence[str], origin: str = "") -> None:
        try:
            spec = pathspec.GitIgnoreSpec.from_lines(lines)
        except Exception:
            # One line pathspec cannot read (git ignores just that line) must not drop
            # the others: a gitignored file with secrets would be indexed and shown.
            good = [line for line in lines if not invalid_pattern(line)]
            for line in lines:
                if invalid_pattern(line):
                    log.warning("ignoring a pattern that cannot be read in %s: %r", origin, line)
            spec = pathspec.GitIgnoreSpec.from_lines(good)
        self.patterns = [
            (p.include, p.regex)
            for p in spec.patterns
            if p.include is not None and p.regex is not None
        ]
        alternatives = [
            "(?:" + re.sub(r"\(\?P<\w+>", "(?:", rx.pattern) + ")" for _, rx in self.patterns
        ]
        self._any = re.compile("|".join(alternatives)) if alternatives else None

    def check(self, relpath: str) -> bool | None:
        """True if ignored, False if re-included (``!``), None if no pattern matches.

        ``relpath`` is relative to the folder of the ignore file, with ``/`` separators
        and a trailing ``/`` for folders.
        """
        if self._any is None or not self._any.match(relpath):
            return None
        for include, regex in reversed(self.patterns):
            if regex.match(relpath):
                return bool(include)
        return None

    @classmethod
    def read(cls, path: str) -> IgnoreFile | None:
        text = read_text(path)
        if text is None:
            return None
        ignore = cls(text.splitlines(), path)
        return ignore if ignore.patterns else None


class IgnoreRules:
    """Every ignore rule of one root: ``.gitignore`` files, ``info/exclude``, user globs.

    ``.gitignore`` files are read once per folder and cached (``invalidate`` drops the
    cache of a folder whose ``.gitignore`` changed).
    """

    def __init__(self, root: str, exclude: Sequence[str] = ()) -> None:
        self.root = root
        self.exclude = IgnoreFile(list(exclude), "context.exclude") if exclude else None
        self._files: dict[str, IgnoreFile | None] = {}
        self._stamps: dict[str, int | None] = {}
        self.info_exclude = IgnoreFile.read(os.path.join(root, ".git", "info", "exclude"))

    def ignore_file(self, folder: str) -> IgnoreFile | None:
        """The parsed ``.gitignore`` of a folder (None when it has none)."""
        if folder not in self._files:
            self._files[folder] = IgnoreFile.read(os.path.join(folder, ".gitignore"))
        return self._files[folder]

    def has_global_rules(self) -> bool:
        """Whether exclude globs or ``.git/info/exclude`` apply (to every path)."""
        return self.exclude is not None or self.info_exclude is not None

    def note_folder(self, folder: str, has_gitignore: bool) -> bool:
        """Record what a folder listing showed; True if the folder has ignore patterns.

        A ``.gitignore`` is parsed again when its mtime changed since it was read.
        """
        if not has_gitignore:
            self._files[folder] = None
            self._stamps.pop(folder, None)
            return False
        try:
            stamp = os.stat(os.path.join(folder, ".gitignore")).st_mtime_ns
        except OSError:
            stamp = None
        if self._stamps.get(folder) != stamp:
            self._files.pop(folder, None)
            self._stamps[folder] = stamp
        return self.ignore_file(folder) is not None

    def invalidate(self, folder: str | None = None) -> None:
        """Forget cached ``.gitignore`` files (of one folder, or all)."""
        if folder is None:
            self._files.clear()
            self._stamps.clear()
        else:
            self._files.pop(folder, None)
            self._stamps.pop(folder, None)

    def is_ignored(self, path: str, is_dir: bool, chain: Sequence[str] | None = None) -> bool:
        """Whether ``path`` (inside the root) is ignored, its folders not considered.

        ``chain`` lists the folders from the root down to the path's parent; the walk
        passes it, other callers let it be computed.
        """
        rel = _relative(path, self.root)
        suffix = "/" if is_dir else ""
        if self.exclude is not None and self.exclude.check(rel + suffix):
            return True
        if chain is None:
            chain = _folders_between(self.root, os.path.dirname(path))
        # The deepest .gitignore decides first, as in git.
        for folder in reversed(chain):
            ignore = self.ignore_file(folder)
            if ignore is None:
                continue
            sub = rel if folder == self.root else _relative(path, folder)
            verdict = ignore.check(sub + suffix)
            if verdict is not None:
                return verdict
        if self.info_exclude is not None:
            return bool(self.info_exclude.check(rel + suffix))
        return False

    def is_path_ignored(self, path: str) -> bool:
        """Whether a file is ignored, its folders included (for one-off checks)."""
        folders = _folders_between(self.root, os.path.dirname(path))
        for i, folder in enumerate(folders[1:], start=1):
            if is_skipped_dir(os.path.basename(folder), folder):
                return True
            if self.is_ignored(folder, True, folders[:i]):
                return True
        return self.is_ignored(path, False, folders)


def _relative(path: str, folder: str) -> str:
    """``path`` relative to ``folder`` (an ancestor), with ``/`` separators."""
    if path.startswith(folder) and path[len(folder) : len(folder) + 1] == os.sep:
        rel = path[len(folder) + 1 :]
    else:
        rel = os.path.relpath(path, folder)
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def _folders_between(root: str, folder: str) -> list[str]:
    """root, root/a, root/a/b ... down to ``folder`` (which must be inside root)."""
    rel = os.path.relpath(folder, root)
    out = [root]
    if rel in (".", ""):
        return out
    current = root
    for part in rel.split(os.sep):
        current = os.path.join(current, part)
        out.append(current)
    return out


def is_skipped_dir(name: str, path: str) -> bool:
    """Vendored, generated or tool folders, and virtual environments under any name."""
    if name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    return os.path.exists(os.path.join(path, "pyvenv.cfg"))


def is_inside(path: str, root: str) -> bool:
    """Whether the real path ``path`` is ``root`` or below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


_NAME = operator.attrgetter("name")


def walk(
    root: str,
    *,
    rules: IgnoreRules | None = None,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    skip_roots: Sequence[str] = (),
    project_files: list[str] | None = None,
    cancelled: object | None = None,
) -> Iterator[WalkEntry]:
    """Yield the indexable files under ``root`` (a real path), folders in sorted order.

    ``skip_roots``: other workspace roots nested inside this one (indexed on their own).
    ``project_files``: if given, receives the paths of ``PROJECT_FILES`` met on the way
    (even in ignored folders' siblings, never in skipped ones).
    ``cancelled``: a ``threading.Event``; the walk stops soon after it is set.
    """
    rules = rules or IgnoreRules(root)
    skip = {os.path.realpath(r) for r in skip_roots} - {root}
    visited: set[str] = {root}
    seen_files: set[str] = set()
    sep = os.sep
    # (folder, chain of folders from the root, whether any ignore rule can apply);
    # the chain gives the .gitignore files to consult without looking them up again.
    stack: list[tuple[str, list[str], bool]] = [(root, [root], rules.has_global_rules())]
    is_set = getattr(cancelled, "is_set", None)
    while stack:
        if is_set is not None and is_set():
            return
        folder, chain, ruled = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            log.debug("cannot list %s: %s", folder, exc)
            continue
        entries.sort(key=_NAME)
        names = [e.name for e in entries]
        if folder != root and "pyvenv.cfg" in names:
            continue  # a virtual environment, whatever its name
        # Only open .gitignore where the listing shows one.
        ruled = rules.note_folder(folder, folder == root or ".gitignore" in names) or ruled
        subfolders: list[tuple[str, list[str], bool]] = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                continue
            language = None
            if not is_dir:
                # Most files are no source (data, docs, translations): decided by name.
                language = language_for_name(name)
                if language is None and (project_files is None or name not in PROJECT_FILES):
                    continue
            path = folder + sep + name
            try:
                is_link = entry.is_symlink()
            except OSError:
                continue
            if is_link:
                try:
                    real = os.path.realpath(path)
                except (OSError, ValueError):  # e.g. /proc/N/exe: a link readlink refuses
                    continue
                if not is_inside(real, root):
                    continue  # never leave the root through a link
            else:
                real = path
            if is_dir:
                if (
                    name in SKIP_DIRS
                    or name.endswith(".egg-info")
                    or real in skip
                    or real in visited
                ):
                    continue
                if ruled and rules.is_ignored(path, True, chain):
                    continue
                visited.add(real)
                # A linked folder's .gitignore chain is the one of its real location.
                subfolders.append(
                    (
                        real,
                        _folders_between(root, real) if is_link else [*chain, real],
                        ruled or is_link,
                    )
                )
                continue
            if project_files is not None and name in PROJECT_FILES:
                project_files.append(real)
            if language is None or real in seen_files:
                continue
            if ruled and rules.is_ignored(path, False, chain):
                continue
            try:
                st = entry.stat() if not is_link else os.stat(real)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                log.debug("skipping %s: not a regular file", real)
                continue
            if st.st_size > max_file_size:
                log.debug("skipping %s: %d bytes", real, st.st_size)
                continue
            seen_files.add(real)
            yield WalkEntry(real, language, st.st_size, st.st_mtime_ns)
        # Depth-first, in name order.
        stack.extend(reversed(subfolders))
