"""Real source trees for benchmarks, fetched from the package registries into bench/.cache/.

Never committed; fetched once and reused.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tarfile

CACHE = pathlib.Path(__file__).resolve().parent / ".cache"


def pypi_sdist(name: str, version: str) -> pathlib.Path:
    """Download and unpack `name==version`'s source distribution; returns its folder."""
    target = CACHE / f"{name}-{version}"
    if target.is_dir() and any(target.iterdir()):
        return _single_child(target)
    CACHE.mkdir(parents=True, exist_ok=True)
    downloads = CACHE / "downloads"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
            "-d",
            str(downloads),
            f"{name}=={version}",
        ],
        check=True,
    )
    archive = next(
        p
        for p in downloads.iterdir()
        if p.name.lower().startswith(name.lower().replace("-", "_"))
        or p.name.lower().startswith(name.lower())
    )
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return _single_child(target)


def _single_child(folder: pathlib.Path) -> pathlib.Path:
    children = [p for p in folder.iterdir() if p.is_dir()]
    return children[0] if len(children) == 1 else folder


def django() -> pathlib.Path:
    return pypi_sdist("Django", "5.1")
