"""Which workspace context stays in a document's prompt from one request to the next.

The engine reuses its state for the longest unchanged start of the prompt, and a hybrid
model (Qwen3.6) can only go back to a saved checkpoint: whatever changes early in the
prompt re-evaluates all that follows. So the context a document's prompt shows is kept,
and changes only in two ways (docs/context.md, "What stays in the prompt"):

- A **request** (the user typing, or jumping to another place of the file) never removes,
  reorders or rewrites a kept block. What retrieval finds for the new place that is not
  shown yet (a definition used there, a region recently edited elsewhere) is *appended* as
  one more block, at most ``APPEND_CAP`` tokens per request and within the budget; what
  did not fit is not appended by later requests but waits for the next refresh. A
  snippet gone stale (its file changed) stays until the next refresh.
- A **refresh** (idle time, in the background, after an edit) packs afresh for where the
  cursor is when the kept context holds appended blocks or a stale snippet, within the
  budget less ``headroom(budget)`` kept free for later appends. Its result is *pending*
  until the caller says it was evaluated (`StickyContext.commit`): a request that comes
  first still gets the context whose state the engine holds.

A change of the prompt format or of the document's language packs afresh at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from context.types import PackedContext, Snippet

# Tiers whose new snippets are appended to a kept context; new similar windows are not
# (they change with every line typed and would grow the prompt at each one).
APPENDABLE = frozenset({"definition", "recent", "current"})
APPEND_CAP = 768  # tokens appended by one request at most (a jump's cost stays a window)


def headroom(budget: int) -> int:
    """Tokens a refresh leaves free for the appends of later requests."""
    return min(budget // 8, 4 * APPEND_CAP)


@dataclass
class Kept:
    """The context kept for one document: packed parts in prompt order."""

    key: Hashable
    parts: list[PackedContext]
    snippets: set[Snippet] = field(default_factory=set)
    tokens: int = 0
    appended: int = 0  # how many of `parts` (at the end) were appended by requests
    # (path, first line, last line) of the snippets requests found and did not append
    # (over `APPEND_CAP`): they wait for the next refresh.
    offered: set[tuple[str, int, int]] = field(default_factory=set)

    def add(self, packed: PackedContext, *, appended: bool) -> None:
        self.parts.append(packed)
        self.snippets.update(packed.snippets)
        self.tokens += packed.tokens
        self.appended += appended

    def covers(self, snippet: Snippet) -> bool:
        return any(
            s.path == snippet.path
            and s.start_line <= snippet.end_line
            and snippet.start_line <= s.end_line
            for s in self.snippets
        )


Packer = Callable[[list[Snippet], int], PackedContext]


class StickyContext:
    """Kept contexts per document, and the rule above. Not thread-safe: one caller (the
    engine's thread) at a time."""

    def __init__(self) -> None:
        self._kept: dict[str, Kept] = {}
        self._pending: dict[str, Kept] = {}
        self.repacks = 0  # contexts packed afresh (benchmarks and tests read these)
        self.appends = 0  # blocks appended to a kept context

    def get(self, path: str) -> Kept | None:
        return self._kept.get(path)

    def forget(self, path: str) -> None:
        self._kept.pop(path, None)
        self._pending.pop(path, None)

    def commit(self, path: str) -> bool:
        """The pending refresh of `path` was evaluated: requests use it from now on."""
        pending = self._pending.pop(path, None)
        if pending is None:
            return False
        self._kept[path] = pending
        return True

    def request(
        self,
        path: str,
        key: Hashable,
        fresh: PackedContext,
        budget: int,
        pack_more: Packer,
    ) -> Kept:
        """The context of a request: the kept one plus what `fresh` adds (appended), or
        `fresh` itself when nothing is kept for this key or the kept one no longer fits."""
        kept = self._kept.get(path)
        if kept is None or kept.key != key or kept.tokens > budget:
            if kept is not None:
                self.repacks += 1
            kept = Kept(key, [])
            kept.add(fresh, appended=False)
            self._kept[path] = kept
            return kept
        new = [
            s
            for s in fresh.snippets
            if s.source in APPENDABLE
            and not kept.covers(s)
            and (s.path, s.start_line, s.end_line) not in kept.offered
        ]
        room = min(APPEND_CAP, budget - kept.tokens)
        if new and room > 0:
            added = pack_more(new, room)
            if added.text:
                kept.add(added, appended=True)
                self.appends += 1
            # What did not fit waits for the refresh: appended at the next keystrokes, a
            # large class's members came 768 tokens at a time, each time evaluating the
            # window after them again (the replay's typing mean of 236 tokens).
            kept.offered.update((s.path, s.start_line, s.end_line) for s in new)
        return kept

    def refresh(self, path: str, key: Hashable, fresh: PackedContext, *, stale: bool) -> Kept:
        """A refresh's context, pending until `commit`: the kept one while it holds no
        appended block and no `stale` snippet (re-evaluating the whole prompt for a
        slightly better choice is not worth it), else `fresh` (packed within the budget
        less `headroom`)."""
        kept = self._kept.get(path)
        if kept is not None and kept.key == key and not kept.appended and not stale:
            self._pending[path] = kept
            return kept
        pending = Kept(key, [])
        pending.add(fresh, appended=False)
        self._pending[path] = pending
        self.repacks += 1
        return pending
