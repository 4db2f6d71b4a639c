"""Replay real edits: what a jump, a first request and typing cost, counted in real tokens.

The changes between consecutive releases of real packages, fetched from the registries
(PyPI source distributions, npm tarballs), or a local git history (``--repo PATH``, the
last commits' changes), are replayed as a user would make them, on the tiny hybrid
``qwen35`` built on Qwen3.6's real vocabulary (``cached_model("qwen35-real")``) with the
multi-file context on (a workspace index of the old release):

- each changed file with two or more hunks is opened as it was before (the server warms
  its prompt on open, while the user reads it);
- for each hunk, top to bottom: the user pauses (the server refreshes the prompt's stable
  part in the background, as after ``REFRESH_AFTER_S`` without an edit), jumps there
  (a request), deletes the removed lines (a request), and types the added lines character
  by character with a request after each keystroke, answered before the next; past
  ``--type-cap`` characters of a hunk the rest is pasted (one request).

Per request kind: tokens evaluated (mean, p50, p95, max) and the prompt's length, which is
what full re-evaluation (llama-cpp-python's ``create_completion`` on a hybrid model, and
this server before jump-proof prompts) evaluates for every request: the baseline. The
projected latency per request on Qwen3.6-27B uses published llama.cpp speeds (community
benchmarks; docs/benchmarks.md): RTX 3090 prefill ≈ 670 tok/s at 1K tokens, ≈ 990 at 8K
(interpolated in between), generation ≈ 38 tok/s; RTX 5090 prefill ≈ 5,400 tok/s,
generation ≈ 52 tok/s.

    python bench/editing_replay.py            # 3 projects, 2 languages (~15 min on 2 cores)
    python bench/editing_replay.py --quick    # fewer files and keystrokes (~3 min)
    python bench/editing_replay.py --repo PATH [--commits 20]   # a local git history
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _sources  # noqa: E402

from lsp_server.completion.service import Completer, CompletionRequest  # noqa: E402
from lsp_server.engine.llama import LlamaEngine  # noqa: E402
from lsp_server.engine.types import EngineConfig  # noqa: E402
from lsp_server.settings import Settings  # noqa: E402
from lsp_server.testing.tiny_gguf import cached_model  # noqa: E402
from lsp_server.workspace import Workspace  # noqa: E402

# (registry, name, old version, new version, source folder inside the package)
PROJECTS = (
    ("pypi", "Django", "5.1", "5.1.1", "django"),
    ("pypi", "SQLAlchemy", "2.1.8", "2.1.9", "lib/sqlalchemy"),
    ("npm", "effect", "4.1.0", "4.1.1", "src"),
)
EXTENSIONS = (".py", ".ts", ".tsx", ".js", ".mjs", ".go", ".rs", ".java", ".c", ".h", ".lua")
MAX_TOKENS = 16  # a one-line suggestion's length; projected generation time uses it

# Published llama.cpp speeds for Qwen3.6-27B (community benchmarks, late 2026).
RTX3090_PREFILL = ((1024, 670.0), (8192, 990.0))
RTX3090_GEN = 38.0
RTX5090_PREFILL = 5400.0
RTX5090_GEN = 52.0


@dataclasses.dataclass
class Hunk:
    start: int  # first line replaced, in the file as it is when the hunk is replayed
    removed: int  # lines removed
    added: list[str]  # lines added


@dataclasses.dataclass
class FileChange:
    project: str
    root: pathlib.Path  # the old tree (indexed)
    path: pathlib.Path  # the file in the old tree
    old: str
    hunks: list[Hunk]  # in file order, line numbers of the old text


def hunks_of(old: list[str], new: list[str]) -> list[Hunk]:
    """The changed regions, changes closer than 3 lines joined (as one edit)."""
    out: list[Hunk] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, old, new, autojunk=False
    ).get_opcodes():
        if tag == "equal":
            continue
        if out and i1 - (out[-1].start + out[-1].removed) < 3:
            last = out[-1]
            gap = old[last.start + last.removed : i1]
            last.added += gap + new[j1:j2]
            last.removed = i2 - last.start
            continue
        out.append(Hunk(i1, i2 - i1, list(new[j1:j2])))
    return out


def changed_files(
    project: str, old_root: pathlib.Path, new_root: pathlib.Path, sub: str
) -> list[FileChange]:
    changes = []
    base = old_root / sub
    for path in sorted(base.rglob("*")):
        if path.suffix not in EXTENSIONS or not path.is_file():
            continue
        other = new_root / sub / path.relative_to(base)
        if not other.is_file():
            continue
        old, new = path.read_text(errors="replace"), other.read_text(errors="replace")
        if old == new:
            continue
        hunks = hunks_of(old.split("\n"), new.split("\n"))
        if len(hunks) >= 2:
            changes.append(FileChange(project, old_root, path, old, hunks))
    return changes


def fetch(registry: str, name: str, version: str) -> pathlib.Path:
    if registry == "pypi":
        return _sources.pypi_sdist(name, version)
    return _sources.npm_tarball(name, version)


def git_changes(repo: pathlib.Path, commits: int) -> Iterator[tuple[str, str, str]]:
    """(path, old text, new text) of the files changed by each of the last `commits`."""
    revs = subprocess.run(
        ["git", "-C", str(repo), "rev-list", f"--max-count={commits}", "--no-merges", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rev in revs:
        names = subprocess.run(
            ["git", "-C", str(repo), "diff", "--name-only", f"{rev}~1", rev],
            capture_output=True,
            text=True,
        ).stdout.split()
        for name in names:
            if not name.endswith(EXTENSIONS):
                continue

            def show(spec: str) -> str | None:
                r = subprocess.run(
                    ["git", "-C", str(repo), "show", spec], capture_output=True, text=True
                )
                return r.stdout if r.returncode == 0 else None

            old, new = show(f"{rev}~1:{name}"), show(f"{rev}:{name}")
            if old is not None and new is not None and old != new:
                yield name, old, new


# ---- the replay ------------------------------------------------------------------------------


def position_after(lines: list[str], row: int, col: int) -> tuple[str, int, int]:
    return "\n".join(lines), row, col


class Session:
    """One engine and completer over one workspace; records every request's figures."""

    def __init__(self, root: pathlib.Path, model: pathlib.Path, budget: int, name: str) -> None:
        self.settings = Settings()
        self.settings.context.budget_tokens = budget
        self.settings.completion.max_tokens = MAX_TOKENS
        self.root = root
        self.name = name
        self.workspace = Workspace([str(root)], lambda: self.settings, cache_dir="")
        self.workspace.build()
        self.engine = LlamaEngine(
            EngineConfig(
                model_path=str(model), n_ctx=2 * (budget + 8192), n_threads=2, slots=2, n_batch=512
            )
        )
        self.completer = Completer(self.engine, self.settings, context=self.workspace.provider())
        self.rows: list[dict[str, Any]] = []
        self.refreshes: list[int] = []

    def close(self) -> None:
        self.engine.close()
        self.workspace.close()

    def request(self, path: pathlib.Path, text: str, line: int, col: int) -> CompletionRequest:
        return CompletionRequest(
            path=str(path),
            text=text,
            line=line,
            character=col,
            display_path=str(path.relative_to(self.root)),
            repo_name=self.name,
        )

    def complete(self, kind: str, path: pathlib.Path, text: str, line: int, col: int) -> None:
        self.workspace.update_document(str(path), text)
        self.workspace.note_view(str(path), line)
        request = self.request(path, text, line, col)
        started = time.perf_counter()
        result = self.completer.complete(request)
        ms = (time.perf_counter() - started) * 1000
        f = result.figures
        prompt = f.prompt_tokens or len(
            self.engine.tokenize_prompt(self.completer.build(request)).tokens
        )
        self.rows.append(
            {
                "kind": kind,
                "evaluated": f.evaluated_tokens,
                "prompt": prompt,
                "generated": f.generated_tokens,
                "cache": result.outcome == "cache",
                "ms": ms,
            }
        )

    def refresh(self, path: pathlib.Path, text: str, line: int, col: int) -> None:
        """Idle time: the server refreshes the stable part in the background."""
        self.workspace.update_document(str(path), text)
        figures = self.completer.warm(self.request(path, text, line, col))
        self.refreshes.append(figures.evaluated_tokens)

    def replay(self, change: FileChange, type_cap: int) -> None:
        lines = change.old.split("\n")
        path = change.path
        self.workspace.update_document(str(path), change.old)
        self.refresh(path, change.old, 0, 0)  # didOpen: warm while the user reads the file
        first = True
        shift = 0
        cursor = (0, 0)
        for hunk in change.hunks:
            row = hunk.start + shift
            row = min(row, len(lines) - 1)
            if not first:  # a pause before moving on: the refresh runs while idle
                self.refresh(path, "\n".join(lines), cursor[0], cursor[1])
            self.complete("first" if first else "jump", path, "\n".join(lines), row, 0)
            first = False
            if hunk.removed:
                del lines[row : row + hunk.removed]
                if row >= len(lines):
                    lines.append("")
                self.complete("delete", path, "\n".join(lines), row, 0)
            added = "\n".join(hunk.added)
            if not hunk.added:
                cursor = (row, 0)
                continue
            # Type into a new line at `row`: the text typed so far, then the rest of the file.
            before, after = lines[:row], lines[row:]
            typed = added[:type_cap]
            for i in range(1, len(typed) + 1):
                part = typed[:i].split("\n")
                cur = before + part + after
                self.complete(
                    "type", path, "\n".join(cur), len(before) + len(part) - 1, len(part[-1])
                )
            if len(added) > len(typed):
                part = added.split("\n")
                cur = before + part + after
                self.complete(
                    "paste", path, "\n".join(cur), len(before) + len(part) - 1, len(part[-1])
                )
            lines = before + hunk.added + after
            cursor = (len(before) + len(hunk.added) - 1, len(hunk.added[-1]))
            shift += len(hunk.added) - hunk.removed


# ---- report ------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))] if values else 0.0


def prefill_3090(n: float) -> float:
    (n0, s0), (n1, s1) = RTX3090_PREFILL
    speed = s0 if n <= n0 else s1 if n >= n1 else s0 + (s1 - s0) * (n - n0) / (n1 - n0)
    return n / speed


def projected(rows: list[dict[str, Any]], tokens_key: str) -> dict[str, float]:
    """Mean and p95 seconds per request on each GPU, for `tokens_key` tokens evaluated."""
    t3090 = [prefill_3090(r[tokens_key]) + MAX_TOKENS / RTX3090_GEN for r in rows]
    t5090 = [r[tokens_key] / RTX5090_PREFILL + MAX_TOKENS / RTX5090_GEN for r in rows]
    return {
        "3090_mean": statistics.mean(t3090),
        "3090_p95": pct(t3090, 0.95),
        "5090_mean": statistics.mean(t5090),
        "5090_p95": pct(t5090, 0.95),
    }


def summarize(rows: list[dict[str, Any]], refreshes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": len(rows)}
    for kind in ("first", "jump", "delete", "type", "paste", "all"):
        sel = rows if kind == "all" else [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        ev = [r["evaluated"] for r in sel]
        pr = [r["prompt"] for r in sel]
        out[kind] = {
            "n": len(sel),
            "evaluated_mean": statistics.mean(ev),
            "evaluated_p50": pct(ev, 0.5),
            "evaluated_p95": pct(ev, 0.95),
            "evaluated_max": max(ev),
            "prompt_mean": statistics.mean(pr),
            "prompt_p95": pct(pr, 0.95),
            "ours": projected(sel, "evaluated"),
            "baseline": projected(sel, "prompt"),
        }
    out["refresh_mean"] = statistics.mean(refreshes) if refreshes else 0
    out["refreshes"] = len(refreshes)
    return out


def print_summary(title: str, s: dict[str, Any]) -> None:
    print(f"\n== {title}: {s['requests']} requests ==")
    print(
        "kind     n      evaluated: mean   p50    p95    max | prompt (baseline) mean  p95 |"
        " RTX 3090 s ours/base | RTX 5090 s ours/base"
    )
    for kind in ("first", "jump", "delete", "type", "paste", "all"):
        k = s.get(kind)
        if not k:
            continue
        o, b = k["ours"], k["baseline"]
        print(
            f"{kind:6} {k['n']:5}  {k['evaluated_mean']:14.0f} {k['evaluated_p50']:5.0f} "
            f"{k['evaluated_p95']:6.0f} {k['evaluated_max']:6.0f} | "
            f"{k['prompt_mean']:22.0f} {k['prompt_p95']:5.0f} | "
            f"{o['3090_mean']:6.2f} / {b['3090_mean']:5.2f} | {o['5090_mean']:6.2f} / {b['5090_mean']:5.2f}"
        )
    print(
        f"background refreshes (idle time, not requests): {s['refreshes']}, "
        f"mean {s['refresh_mean']:.0f} tokens evaluated"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="4 files a project, 12 keystrokes a hunk"
    )
    parser.add_argument("--budget", type=int, default=16384)
    parser.add_argument("--files", type=int, default=12, help="changed files per project")
    parser.add_argument("--type-cap", type=int, default=60, help="characters typed per hunk")
    parser.add_argument("--max-hunks", type=int, default=4, help="hunks replayed per file")
    parser.add_argument("--repo", type=pathlib.Path, help="replay a local git history instead")
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--json", type=pathlib.Path, help="write every request's figures here")
    parser.add_argument("--projects", nargs="+", help="only these of the registry projects")
    args = parser.parse_args()
    if args.quick:
        args.files, args.type_cap, args.max_hunks = 4, 12, 3
    model = cached_model(
        "qwen35-real", pathlib.Path(tempfile.gettempdir()) / "qwen-lsp-bench-models"
    )
    sessions: list[tuple[str, Session, list[FileChange]]] = []
    if args.repo:
        repo = args.repo.resolve()
        changes = []
        for name, old, new in git_changes(repo, args.commits):
            hunks = hunks_of(old.split("\n"), new.split("\n"))
            if len(hunks) >= 2:
                changes.append(FileChange(repo.name, repo, repo / name, old, hunks))
        sessions.append((repo.name, Session(repo, model, args.budget, repo.name), changes))
    else:
        for registry, name, old_v, new_v, sub in PROJECTS:
            if args.projects and name not in args.projects:
                continue
            old_root, new_root = fetch(registry, name, old_v), fetch(registry, name, new_v)
            changes = changed_files(name, old_root, new_root, sub)
            print(f"{name} {old_v} -> {new_v}: {len(changes)} changed files with 2+ hunks")
            session = Session(old_root, model, args.budget, name.lower())
            sessions.append((f"{name} {old_v} → {new_v}", session, changes))
    all_rows: list[dict[str, Any]] = []
    all_refreshes: list[int] = []
    files = 0
    started = time.perf_counter()
    for title, session, changes in sessions:
        # The files with the most hunks first: the replay covers the largest edits.
        chosen = sorted(changes, key=lambda c: (-len(c.hunks), str(c.path)))[: args.files]
        for change in chosen:
            change.hunks = change.hunks[: args.max_hunks]
            session.replay(change, args.type_cap)
            files += 1
        print_summary(f"{title} ({len(chosen)} files)", summarize(session.rows, session.refreshes))
        all_rows += [dict(r, project=title) for r in session.rows]
        all_refreshes += session.refreshes
        session.close()
    total = summarize(all_rows, all_refreshes)
    print_summary(f"all projects ({files} files)", total)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"summary": total, "rows": all_rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
