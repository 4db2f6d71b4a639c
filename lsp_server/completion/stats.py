"""Counters since start, and the figures of the last completions (`qwenLsp/stats`)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from typing import Any

from lsp_server.engine.types import Figures

RECENT = 50


class Stats:
    """Thread-safe: the engine thread records, the server thread reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests = 0
        self.cancelled = 0
        self.cache_hits = 0
        self.empty = 0
        self.errors = 0
        self.totals = Figures()
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

    def record(
        self,
        figures: Figures,
        *,
        kind: str,
        path: str,
        total_ms: float,
        outcome: str,
        context: list[str] | None = None,
    ) -> None:
        with self._lock:
            if kind == "completion":
                self.requests += 1
                if outcome == "cancelled":
                    self.cancelled += 1
                elif outcome == "cache":
                    self.cache_hits += 1
                elif outcome == "empty":
                    self.empty += 1
                elif outcome == "error":
                    self.errors += 1
            for f in dataclasses.fields(Figures):
                setattr(
                    self.totals, f.name, getattr(self.totals, f.name) + getattr(figures, f.name)
                )
            entry = {"kind": kind, "path": path, "outcome": outcome, "totalMs": round(total_ms, 2)}
            entry.update(figures_to_wire(figures))
            if context is not None:
                entry["context"] = context
            self.recent.append(entry)

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            data: dict[str, Any] = {
                "uptimeS": round(time.time() - self.started, 1),
                "requests": self.requests,
                "cancelled": self.cancelled,
                "cacheHits": self.cache_hits,
                "empty": self.empty,
                "errors": self.errors,
                **figures_to_wire(self.totals),
                "recent": list(self.recent),
            }
        if extra:
            data.update(extra)
        return data


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def figures_to_wire(figures: Figures) -> dict[str, Any]:
    return {
        _camel(f.name): (round(v, 2) if isinstance(v := getattr(figures, f.name), float) else v)
        for f in dataclasses.fields(Figures)
    }


def figures_line(figures: Figures) -> str:
    """One log line's worth of figures."""
    return (
        f"prompt {figures.prompt_tokens} tok, reused {figures.reused_tokens}, "
        f"evaluated {figures.evaluated_tokens}, generated {figures.generated_tokens}, "
        f"prefill {figures.prefill_ms:.0f} ms, generation {figures.generate_ms:.0f} ms, "
        f"checkpoints {figures.checkpoint_hits} hit / {figures.checkpoint_misses} miss / "
        f"{figures.checkpoints_saved} saved"
    )
