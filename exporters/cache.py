"""The artifact cache: verified exports shared by every output folder, addressed by their export key.

An export's key (:func:`deploykit.exporters.pipeline.export`: model, weights hash, resolution, format, precision,
calibration, the converter packages' versions and the exporters' own code) names a folder under
``<cache>/artifacts/`` (``$DEPLOYKIT_CACHE``, else ``~/.cache/deploykit``) holding the file and its manifest,
which records its verification. A second demo, another ``--out`` folder or a fresh clone then gets the file by
hard link (a copy across file systems) instead of converting and verifying it again. The cached file's sha256 is
checked against its manifest before it is handed out, so a file changed since it was stored is a miss (and is
dropped), never a wrong file. ``--no-cache`` bypasses the cache; deleting the folder clears it.

Entries appear atomically: written under a hidden temporary name, then renamed into place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from deploykit.artifact import Manifest, file_sha256, read_manifest, write_manifest
from deploykit.errors import DeploykitError
from deploykit.machine import cache_dir


def cache_root() -> Path:
    """``$DEPLOYKIT_ARTIFACT_CACHE`` (this cache alone elsewhere: the test suite gives each test its own), else
    ``artifacts/`` in deploykit's cache folder (:func:`deploykit.machine.cache_dir`)."""
    if os.environ.get("DEPLOYKIT_ARTIFACT_CACHE"):
        return Path(os.environ["DEPLOYKIT_ARTIFACT_CACHE"])
    return cache_dir() / "artifacts"


def fetch(key: str, dest: Path) -> Manifest | None:
    """Place the cached file for ``key`` at ``dest`` (with its manifest) and return the manifest; None on a miss."""
    src = cache_root() / key / dest.name
    if not src.exists():
        return None
    try:
        manifest = read_manifest(src)
    except DeploykitError:
        manifest = None
    if manifest is None or manifest.cache_key != key or file_sha256(src) != manifest.sha256:
        remove_path(src.parent)  # damaged or changed since stored: never hand it out
        return None
    partial = dest.with_name(f".{dest.stem}.cached{dest.suffix}")
    remove_path(partial)
    try:
        _link_or_copy(src, partial)
        remove_path(dest)
        partial.rename(dest)
    finally:
        remove_path(partial)
    write_manifest(dest, manifest)
    return manifest


def store(key: str, path: Path, manifest: Manifest) -> None:
    """Keep an exported file and its manifest under ``key``. The cache only saves time: a cache that cannot be
    written (a full or read-only disk) leaves the export as it is."""
    root = cache_root()
    tmp = root / f".{key}.{os.getpid()}.partial"
    entry = root / key
    try:
        remove_path(tmp)
        tmp.mkdir(parents=True)
        _link_or_copy(path, tmp / path.name)
        write_manifest(tmp / path.name, manifest)
        remove_path(entry)
        tmp.rename(entry)
    except OSError:
        pass
    finally:
        remove_path(tmp)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows it (no bytes copied), else a copy; a package folder file by file.
    A file's users never write into it (a new export is a new file renamed into place), so sharing is safe, and
    :func:`fetch` checks the sha256 before sharing it again."""
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=_link_file)
    else:
        _link_file(src, dst)


def _link_file(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def remove_path(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()
