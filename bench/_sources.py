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
    # This very version's archive (the folder holds other versions' too).
    stems = {f"{n}-{version}." for n in (name.lower(), name.lower().replace("-", "_"))}
    archive = next(
        p for p in downloads.iterdir() if any(p.name.lower().startswith(s) for s in stems)
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


def npm_tarball(name: str, version: str) -> pathlib.Path:
    """Download `name@version`'s npm tarball with `npm pack` and unpack it; returns its
    `package/` folder."""
    safe = name.replace("@", "").replace("/", "-")
    target = CACHE / f"npm-{safe}-{version}"
    if not (target / "package").is_dir():
        downloads = CACHE / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", "-q", f"{name}@{version}", "--pack-destination", str(downloads)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        archive = downloads / f"{safe}-{version}.tgz"
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    return target / "package"


def debian_packages(label: str, packages: list[str]) -> pathlib.Path:
    """Download Debian binary packages with `apt-get download` and extract them all into
    one folder with `dpkg-deb -x` (Debian's `golang-*-dev`, `librust-*-dev` and
    `*-source` packages ship source trees); returns that folder."""
    target = CACHE / f"deb-{label}"
    done = target / ".extracted"
    if done.is_file():
        return target
    downloads = CACHE / "downloads" / "deb"
    downloads.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "-q", *packages], check=True, cwd=downloads)
    target.mkdir(parents=True, exist_ok=True)
    for package in packages:
        debs = sorted(downloads.glob(f"{package}_*.deb"))
        if not debs:
            raise FileNotFoundError(f"apt-get download gave no .deb for {package}")
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(target)], check=True)
    done.write_text("\n".join(packages) + "\n")
    return target


def zip_subtree(label: str, archive: pathlib.Path, prefix: str) -> pathlib.Path:
    """Extract the members of `archive` under `prefix` (a JDK `src.zip` module) into
    bench/.cache/`label`/; returns that folder."""
    import zipfile

    target = CACHE / label
    done = target / ".extracted"
    if not done.is_file():
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(prefix)]
            zf.extractall(target, members)
        done.write_text(prefix + "\n")
    return target
