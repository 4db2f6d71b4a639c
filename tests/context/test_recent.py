"""Recent activity: merging, bounds, exclusion, line shifts and thread safety."""

from __future__ import annotations

import threading

from context.recent import RecentActivity


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_nearby_edits_merge_into_one_region():
    recent = RecentActivity(clock=Clock(), merge_gap=5)
    recent.note_edit("/a.py", 10, 10)
    recent.note_edit("/a.py", 11, 11)
    recent.note_edit("/a.py", 14, 15)
    recent.note_edit("/a.py", 40, 40)
    regions = recent.regions()
    assert [(r.start_line, r.end_line, r.kind) for r in regions] == [
        (40, 40, "edit"),
        (10, 15, "edit"),
    ]


def test_an_edit_region_does_not_grow_without_bound():
    recent = RecentActivity(clock=Clock(), merge_gap=5, max_edit_span=20)
    for line in range(0, 100, 3):
        recent.note_edit("/a.py", line, line)
    assert all(r.end_line - r.start_line < 20 for r in recent.regions(limit=100))


def test_views_move_instead_of_piling_up():
    recent = RecentActivity(clock=Clock(), view_radius=10)
    recent.note_view("/a.py", 50)
    recent.note_view("/a.py", 55)
    recent.note_view("/a.py", 200)
    regions = recent.regions()
    assert [(r.start_line, r.end_line, r.kind) for r in regions] == [
        (190, 210, "view"),
        (45, 65, "view"),
    ]


def test_newest_first_excluding_the_current_file():
    recent = RecentActivity(clock=Clock())
    recent.note_edit("/a.py", 1, 2)
    recent.note_view("/b.py", 30)
    recent.note_edit("/c.py", 5, 5)
    assert [r.path for r in recent.regions()] == ["/c.py", "/b.py", "/a.py"]
    assert [r.path for r in recent.regions(exclude_path="/c.py")] == ["/b.py", "/a.py"]
    assert [r.path for r in recent.regions(limit=1)] == ["/c.py"]
    assert [r.path for r in recent.regions(kinds=("edit",))] == ["/c.py", "/a.py"]
    assert recent.edited_paths(exclude_path="/a.py") == {"/c.py"}


def test_bounded_per_file_and_in_files():
    recent = RecentActivity(clock=Clock(), max_regions_per_file=3, max_files=4, merge_gap=0)
    for i in range(10):
        recent.note_edit("/a.py", i * 100, i * 100)
    assert [r.start_line for r in recent.regions(limit=100)] == [900, 800, 700]
    for i in range(10):
        recent.note_view(f"/f{i}.py", 0)
    paths = {r.path for r in recent.regions(limit=100)}
    assert paths == {"/f6.py", "/f7.py", "/f8.py", "/f9.py"}


def test_lines_added_above_shift_regions_below():
    recent = RecentActivity(clock=Clock(), merge_gap=0)
    recent.note_edit("/a.py", 50, 52)
    recent.note_view("/a.py", 100)
    # Three lines inserted at line 10 (lines 10..13 after the edit).
    recent.note_edit("/a.py", 10, 13, line_delta=3)
    spans = sorted((r.start_line, r.end_line, r.kind) for r in recent.regions())
    assert spans == [(10, 13, "edit"), (53, 55, "edit"), (91, 115, "view")]


def test_forget_and_deterministic_ties():
    recent = RecentActivity(clock=lambda: 5.0)
    recent.note_edit("/b.py", 1, 1)
    recent.note_edit("/a.py", 1, 1)
    assert [r.path for r in recent.regions()] == ["/a.py", "/b.py"]
    recent.forget("/a.py")
    assert [r.path for r in recent.regions()] == ["/b.py"]


def test_concurrent_updates_and_reads():
    recent = RecentActivity(max_files=8)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(2000):
                path = f"/f{(seed + i) % 12}.py"
                if i % 3:
                    recent.note_edit(path, i % 300, i % 300 + 2, line_delta=i % 2)
                else:
                    recent.note_view(path, i % 500)
                recent.regions(exclude_path=path)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r.path for r in recent.regions(limit=1000)}) <= 8
