"""Replay real edits: what a jump, a first request and typing cost, counted in real tokens.

The changes between consecutive patch releases of real packages, fetched from the
registries with their own clients (PyPI source distributions with `pip download`, npm
tarballs with `npm pack`), or a local git history (``--repo PATH``: the last commits'
changes), are replayed as a user would make them. Release pairs are chosen the same way
for every project (`release_pairs`): the newest consecutive releases of one X.Y line,
newest first, until the project has ``--files`` changed files with two or more hunks
(at most ``--pairs`` pairs); the files with the most hunks are replayed, their first
``--max-hunks`` hunks. The model is the tiny hybrid ``qwen35`` on Qwen3.6's real
vocabulary (``bench/_models.py``), with the multi-file context on (a workspace index of
the old release), a 16K budget:

- each file is opened as it was before (the server warms its prompt on open, while the
  user reads it: the "first" request comes after that);
- the user goes to the second hunk (the first request), deletes its removed lines (a
  request) and types its added lines character by character, a request after each
  keystroke answered before the next; half-way through, the first hunk (often the
  imports) is made at once, above the cursor, as people add an import while writing the
  code that needs it: an edit elsewhere, and the next keystroke is the "back" request;
- then each further hunk, top to bottom: a pause (the background refresh of an idle
  editor), a "jump" there, the deletion, the typing; past ``--type-cap`` characters of a
  hunk the rest is pasted (one request).

Per request kind: tokens evaluated (mean, p50, p95, max) and the prompt's length, which is
what full re-evaluation evaluates for every request (llama-cpp-python's
``create_completion`` on a hybrid model, and this server before jump-proof prompts): the
baseline of the same session. The projected latency per request on Qwen3.6-27B uses
published llama.cpp speeds (sources in docs/benchmarks.md) and 16 generated tokens.

    python bench/editing_replay.py            # 4 projects, 2 languages (run one process per
                                              # project with --projects X --json F, then
                                              # --summarize F1 F2 ... on a busy machine)
    python bench/editing_replay.py --quick    # 2 files a project, 12 keystrokes a hunk
    python bench/editing_replay.py --repo PATH [--commits 20]   # a local git history
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _sources  # noqa: E402
from _models import CHECKPOINTS_KEPT, bench_model, checkpoint_size  # noqa: E402

from lsp_server.completion.service import Completer, CompletionRequest  # noqa: E402
from lsp_server.engine.llama import LlamaEngine  # noqa: E402
from lsp_server.engine.types import EngineConfig  # noqa: E402
from lsp_server.settings import Settings  # noqa: E402
from lsp_server.workspace import Workspace  # noqa: E402

# (registry, name, source folder inside the package). The release pairs are chosen by
# `release_pairs`: the newest consecutive patch releases, whatever the project.
PROJECTS = (
    ("pypi", "Django", "django"),
    ("pypi", "pydantic", "pydantic"),
    ("npm", "effect", "src"),
    ("npm", "zod", "src"),
)
EXTENSIONS = (".py", ".ts", ".tsx", ".js", ".mjs", ".go", ".rs", ".java", ".c", ".h", ".lua")
# Published llama.cpp speeds (docs/benchmarks.md cites each): RTX 3090, a 27B hybrid at
# UD-Q4_K_XL: prefill 673 tok/s at 1K, 993 at 8K; Qwen3.6-27B generates ~38 tok/s.
# RTX 5090, Qwen3.6-27B UD-Q5_K_XL: an ~8K prompt in 1.49 s (~5,400 tok/s), 52 tok/s.
RTX3090_PREFILL = ((1024, 670.0), (8192, 990.0))
RTX3090_GEN = 38.0
RTX5090_PREFILL = 5400.0
RTX5090_GEN = 52.0

MAX_TOKENS = 16  # a one-line suggestion's length; projected generation time uses it


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


def versions(registry: str, name: str) -> list[str]:
    """The project's releases, as its registry's own client lists them."""
    if registry == "pypi":
        out = subprocess.run(
            [sys.executable, "-m", "pip", "index", "versions", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(x for x in out.splitlines() if x.startswith("Available versions:"))
        return [v.strip() for v in line.split(":", 1)[1].split(",")]
    out = subprocess.run(
        ["npm", "view", name, "versions", "--json"], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def release_pairs(releases: list[str]) -> list[tuple[str, str]]:
    """Consecutive patch releases, newest first: (X.Y.n-1 or the release before it in
    X.Y, X.Y.n). Pre-releases are left out; X.Y counts as X.Y.0."""

    def key(v: str) -> tuple[int, int, int] | None:
        m = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", v)
        return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None

    stable = sorted((k, v) for v in releases if (k := key(v)) is not None)
    pairs = [
        (old, new)
        for (ka, old), (kb, new) in zip(stable, stable[1:], strict=False)
        if ka[:2] == kb[:2]
    ]
    return pairs[::-1]


def project_changes(
    registry: str, name: str, sub: str, want: int, max_pairs: int
) -> list[tuple[str, str, list[FileChange]]]:
    """The newest patch release pairs of a project, until `want` changed files with two or
    more hunks (or `max_pairs` pairs): [(old, new, changes)]."""
    out: list[tuple[str, str, list[FileChange]]] = []
    found = 0
    for old_v, new_v in release_pairs(versions(registry, name))[:max_pairs]:
        old_root, new_root = fetch(registry, name, old_v), fetch(registry, name, new_v)
        changes = changed_files(name, old_root, new_root, sub)
        print(f"{name} {old_v} -> {new_v}: {len(changes)} changed files with 2+ hunks", flush=True)
        if changes:
            out.append((old_v, new_v, changes))
            found += len(changes)
        if found >= want:
            break
    return out


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

    def __init__(
        self, root: pathlib.Path, model: pathlib.Path, budget: int, name: str, checkpoint: int
    ) -> None:
        self.settings = Settings()
        self.settings.context.budget_tokens = budget
        self.settings.completion.max_tokens = MAX_TOKENS
        self.root = root
        self.name = name
        self.workspace = Workspace([str(root)], lambda: self.settings, cache_dir="")
        self.workspace.build()
        # One thread: on a shared two-core machine two threads wait on each other at every
        # barrier, several times slower (the counts are the same).
        self.engine = LlamaEngine(
            EngineConfig(
                model_path=str(model),
                n_ctx=2 * (budget + 8192),
                n_threads=1,
                slots=2,
                n_batch=512,
                checkpoint_bytes=CHECKPOINTS_KEPT * checkpoint,
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

    def complete(self, kind: str, path: pathlib.Path, lines: list[str], row: int, col: int) -> None:
        text = "\n".join(lines)
        self.workspace.update_document(str(path), text)
        self.workspace.note_view(str(path), row)
        request = self.request(path, text, row, col)
        started, cpu = time.perf_counter(), time.process_time()
        result = self.completer.complete(request)
        ms = (time.perf_counter() - started) * 1000
        cpu_ms = (time.process_time() - cpu) * 1000
        f = result.figures
        prompt = f.prompt_tokens or len(
            self.engine.tokenize_prompt(self.completer.build(request)).tokens
        )
        self.rows.append(
            {
                "kind": kind,
                "file": str(path.relative_to(self.root)),
                "line": row,
                "evaluated": f.evaluated_tokens,
                "reused": f.reused_tokens,
                "prompt": prompt,
                "generated": f.generated_tokens,
                "cache": result.outcome == "cache",
                "ms": ms,
                "cpu_ms": cpu_ms,
            }
        )

    def refresh(self, path: pathlib.Path, lines: list[str], row: int, col: int) -> None:
        """Idle time: the server refreshes the stable part in the background."""
        text = "\n".join(lines)
        self.workspace.update_document(str(path), text)
        figures = self.completer.warm(self.request(path, text, row, col))
        self.refreshes.append(figures.evaluated_tokens)

    def replay(self, change: FileChange, type_cap: int) -> None:
        """Open the file as it was, then make its hunks as a user would.

        Hunks go top to bottom, but the first one (often the imports) is made in the middle
        of typing the second, as people add an import while writing the code that needs it:
        an edit elsewhere in the file, above the cursor, after which typing goes on where it
        was (the "back" request). Each move to the next hunk follows a pause (the
        background refresh of an idle editor) and is a "jump"."""
        path = change.path
        lines = change.old.split("\n")
        applied: list[Hunk] = []

        def row_of(hunk: Hunk) -> int:  # where the hunk starts in the text as it is now
            shift = sum(len(h.added) - h.removed for h in applied if h.start < hunk.start)
            return min(hunk.start + shift, len(lines) - 1)

        def apply(text: list[str], hunk: Hunk, row: int) -> list[str]:
            applied.append(hunk)
            return text[:row] + hunk.added + text[row + hunk.removed :]

        self.refresh(path, lines, 0, 0)  # didOpen: warm while the user reads the file
        first, *rest = change.hunks
        elsewhere: Hunk | None = first
        typing = next((h for h in rest if h.added), None)
        if typing is None:  # nothing typed after the first hunk: no edit elsewhere either
            rest, elsewhere = change.hunks, None
        cursor = (0, 0)
        for n, hunk in enumerate(rest):
            row = row_of(hunk)
            if n:  # a pause before moving on: the refresh runs while idle
                self.refresh(path, lines, *cursor)
            self.complete("first" if n == 0 else "jump", path, lines, row, 0)
            if hunk.removed:
                lines = lines[:row] + lines[row + hunk.removed :]
                if row >= len(lines):
                    lines.append("")
                applied.append(Hunk(hunk.start, hunk.removed, []))
                self.complete("delete", path, lines, row, 0)
            if not hunk.added:
                cursor = (row, 0)
                continue
            if applied and applied[-1].start == hunk.start:
                applied.pop()  # (counted once, with what is added, below)
            added = "\n".join(hunk.added)
            typed = added[:type_cap]
            before, after = lines[:row], lines[row:]
            back_at = max(1, len(typed) // 2) if hunk is typing and elsewhere else -1
            kind = "type"
            for i in range(1, len(typed) + 1):
                if i == back_at and elsewhere is not None:
                    before = apply(before, elsewhere, row_of(elsewhere))
                    row += len(elsewhere.added) - elsewhere.removed
                    elsewhere, kind = None, "back"
                part = typed[:i].split("\n")
                self.complete(kind, path, before + part + after, row + len(part) - 1, len(part[-1]))
                kind = "type"
            if len(added) > len(typed):
                part = added.split("\n")
                self.complete(
                    "paste", path, before + part + after, row + len(part) - 1, len(part[-1])
                )
            lines = before + hunk.added + after
            applied.append(Hunk(hunk.start, hunk.removed, hunk.added))
            cursor = (row + len(hunk.added) - 1, len(hunk.added[-1]))


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


KINDS = ("first", "jump", "delete", "back", "type", "type-1", "type-n", "paste", "all")


def summarize(rows: list[dict[str, Any]], refreshes: list[int]) -> dict[str, Any]:
    """Per kind of request; "type" splits into the first keystroke after a move or a
    deletion ("type-1": the code after the cursor changed, the window is evaluated again)
    and the keystrokes after it ("type-n": typing in place)."""
    out: dict[str, Any] = {"requests": len(rows)}
    split = [
        "type-1"
        if r["kind"] == "type" and (i == 0 or rows[i - 1]["kind"] not in ("type", "back"))
        else "type-n"
        if r["kind"] == "type"
        else r["kind"]
        for i, r in enumerate(rows)
    ]
    for kind in KINDS:
        sel = (
            rows
            if kind == "all"
            else [r for r, k in zip(rows, split, strict=True) if kind in (r["kind"], k)]
        )
        if not sel:
            continue
        ev = [r["evaluated"] for r in sel]
        wall = [r["ms"] for r in sel]
        cpu = [r["cpu_ms"] for r in sel]
        pr = [r["prompt"] for r in sel]
        out[kind] = {
            "n": len(sel),
            "evaluated_mean": statistics.mean(ev),
            "evaluated_p50": pct(ev, 0.5),
            "evaluated_p95": pct(ev, 0.95),
            "evaluated_max": max(ev),
            "prompt_mean": statistics.mean(pr),
            "prompt_p95": pct(pr, 0.95),
            "wall_ms_p50": pct(wall, 0.5),
            "cpu_ms_p50": pct(cpu, 0.5),
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
        " RTX 3090 s: ours mean p95 / base | RTX 5090 s: ours mean p95 / base | wall/CPU ms p50"
    )
    for kind in KINDS:
        k = s.get(kind)
        if not k:
            continue
        o, b = k["ours"], k["baseline"]
        print(
            f"{kind:6} {k['n']:5}  {k['evaluated_mean']:14.0f} {k['evaluated_p50']:5.0f} "
            f"{k['evaluated_p95']:6.0f} {k['evaluated_max']:6.0f} | "
            f"{k['prompt_mean']:22.0f} {k['prompt_p95']:5.0f} | "
            f"{o['3090_mean']:5.2f} {o['3090_p95']:5.2f} / {b['3090_mean']:5.2f} | "
            f"{o['5090_mean']:5.2f} {o['5090_p95']:5.2f} / {b['5090_mean']:5.2f} | "
            f"{k['wall_ms_p50']:.0f}/{k['cpu_ms_p50']:.0f}"
        )
    print(
        f"background refreshes (idle time, not requests): {s['refreshes']}, "
        f"mean {s['refresh_mean']:.0f} tokens evaluated"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 files a project, 12 keystrokes a hunk"
    )
    parser.add_argument("--budget", type=int, default=16384)
    parser.add_argument("--files", type=int, default=8, help="changed files per project")
    parser.add_argument("--pairs", type=int, default=4, help="release pairs per project, at most")
    parser.add_argument("--type-cap", type=int, default=16, help="characters typed per hunk")
    parser.add_argument("--max-hunks", type=int, default=4, help="hunks replayed per file")
    parser.add_argument("--repo", type=pathlib.Path, help="replay a local git history instead")
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--json", type=pathlib.Path, help="write every request's figures here")
    parser.add_argument("--projects", nargs="+", help="only these of the registry projects")
    parser.add_argument(
        "--summarize",
        type=pathlib.Path,
        nargs="+",
        help="only print the summary of these --json files together (runs split by project)",
    )
    args = parser.parse_args()
    if args.summarize:
        rows = [r for f in args.summarize for r in json.loads(f.read_text())["rows"]]
        refreshes = [n for f in args.summarize for n in json.loads(f.read_text())["refreshes"]]
        for title in dict.fromkeys(r["project"] for r in rows):
            sel = [r for r in rows if r["project"] == title]
            files = len({r["file"] for r in sel})
            print_summary(f"{title} ({files} files)", summarize(sel, []))
        files = len({(r["project"], r["file"]) for r in rows})
        print_summary(f"all projects ({files} files)", summarize(rows, refreshes))
        return 0
    if args.quick:
        args.files, args.type_cap, args.max_hunks = 2, 12, 3
    model = bench_model()
    checkpoint = checkpoint_size(model)
    # (title, old tree, changes): each release pair is replayed over an index of its old tree.
    work: list[tuple[str, pathlib.Path, list[FileChange]]] = []
    if args.repo:
        repo = args.repo.resolve()
        changes = []
        for name, old, new in git_changes(repo, args.commits):
            hunks = hunks_of(old.split("\n"), new.split("\n"))
            if len(hunks) >= 2:
                changes.append(FileChange(repo.name, repo, repo / name, old, hunks))
        work.append((repo.name, repo, changes))
    else:
        for registry, name, sub in PROJECTS:
            if args.projects and name not in args.projects:
                continue
            left = args.files
            for old_v, new_v, changes in project_changes(
                registry, name, sub, args.files, args.pairs
            ):
                # The files with the most hunks first: the replay covers the largest edits.
                chosen = sorted(changes, key=lambda c: (-len(c.hunks), str(c.path)))[:left]
                left -= len(chosen)
                work.append((f"{name} {old_v} → {new_v}", chosen[0].root, chosen))
                if left <= 0:
                    break
    all_rows: list[dict[str, Any]] = []
    all_refreshes: list[int] = []
    files = 0
    started, cpu = time.perf_counter(), time.process_time()
    for title, root, changes in work:
        session = Session(root, model, args.budget, title.split()[0].lower(), checkpoint)
        chosen = sorted(changes, key=lambda c: (-len(c.hunks), str(c.path)))[: args.files]
        for change in chosen:
            change.hunks = change.hunks[: args.max_hunks]
            session.replay(change, args.type_cap)
            files += 1
            print(
                f"  {change.path.relative_to(root)}: {len(change.hunks)} hunks, "
                f"{len(session.rows)} requests so far, CPU {time.process_time() - cpu:.0f} s",
                flush=True,
            )
        print_summary(f"{title} ({len(chosen)} files)", summarize(session.rows, session.refreshes))
        all_rows += [dict(r, project=title) for r in session.rows]
        all_refreshes += session.refreshes
        session.close()
        if args.json:  # (kept as it goes: a long run can be read before it ends)
            args.json.write_text(json.dumps({"rows": all_rows, "refreshes": all_refreshes}))
    total = summarize(all_rows, all_refreshes)
    print_summary(f"all projects ({files} files)", total)
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s, "
        f"CPU {time.process_time() - cpu:.0f} s, load average {os.getloadavg()}"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"summary": total, "rows": all_rows, "refreshes": all_refreshes})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
