"""Fetch the official xlsa17 archive once: resumable, checksummed, extracted atomically."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from unseen.errors import UnseenInputError
from unseen.io import atomic_write_json

DEFAULT_URL = "http://datasets.d2.mpi-inf.mpg.de/xian/xlsa17.zip"
ARCHIVE_NAME = "xlsa17.zip"
EXTRACTED_NAME = "xlsa17"
COMPLETE_MARKER = ".unseen-complete.json"
_CHUNK = 1 << 20


def _manual_steps(url: str, cache_dir: Path) -> str:
    target = cache_dir / EXTRACTED_NAME
    return (f"To install it by hand: download {url} with a browser or `curl -L -O {url}`, "
            f"unzip it so that {target}/data/AWA2/res101.mat exists (or unzip anywhere), "
            f"then pass --data-root {target / 'data'} (or the folder you unzipped into, "
            "its data/ folder)")


def _fetch(url: str, part: Path, timeout: float, cache_dir: Path) -> None:
    """Download `url` into `part`, resuming from its current size via an HTTP Range request."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "unseen"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # the .part file already holds the whole archive
        raise UnseenInputError(f"{url}: expected the xlsa17 archive, found HTTP {exc.code} "
                               f"{exc.reason}. {_manual_steps(url, cache_dir)}") from exc
    except (OSError, http.client.HTTPException) as exc:  # DNS, refused, timeout, ...
        reason = getattr(exc, "reason", exc)
        raise UnseenInputError(f"{url}: expected a reachable server (timeout {timeout:g} s), "
                               f"found {type(reason).__name__}: {reason}. "
                               f"{_manual_steps(url, cache_dir)}") from exc
    with response:
        resumed = offset and response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (offset if resumed else 0)) if length else None
        mode = "ab" if resumed else "wb"
        with open(part, mode) as handle, tqdm(
                total=total, initial=offset if resumed else 0, unit="B", unit_scale=True,
                desc=ARCHIVE_NAME, disable=not sys.stderr.isatty()) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:  # timeout, reset, ...
                    raise UnseenInputError(
                        f"{url}: expected the rest of the archive, found the connection lost "
                        f"after {handle.tell()} bytes ({exc}); run again to resume. "
                        f"{_manual_steps(url, cache_dir)}") from exc
                if not chunk:
                    break
                handle.write(chunk)
                bar.update(len(chunk))
            handle.flush()
            os.fsync(handle.fileno())
    if total is not None and part.stat().st_size < total:
        raise UnseenInputError(f"{url}: expected {total} bytes, found {part.stat().st_size} "
                               "(connection closed early); run again to resume")


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _extract(archive: Path, target: Path) -> None:
    """Unzip into a temporary sibling folder, then rename it to `target` in one step."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.extract-"))
    try:
        with zipfile.ZipFile(archive) as bundle:
            root = staging.resolve()
            for member in bundle.namelist():
                if not (staging / member).resolve().is_relative_to(root):
                    raise UnseenInputError(f"{archive}: expected member paths inside the "
                                           f"archive, found {member!r}")
            bundle.extractall(staging)
        # The official zip holds one top-level `xlsa17/` folder; do not nest it twice.
        entries = [entry for entry in staging.iterdir() if not entry.name.startswith("__MACOSX")]
        content = entries[0] if len(entries) == 1 and entries[0].is_dir() \
            and entries[0].name == EXTRACTED_NAME else staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(content, target)
    except zipfile.BadZipFile as exc:
        raise UnseenInputError(f"{archive}: expected a zip archive, found {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_xlsa17(cache_dir: str | os.PathLike, url: str = DEFAULT_URL,
                    sha256: str | None = None, timeout: float = 10.0) -> Path:
    """Download and extract xlsa17 into `cache_dir/xlsa17/`; returns that folder.

    Idempotent: a completed extraction is returned at once. An interrupted download resumes
    from `xlsa17.zip.part`; the archive is deleted once extracted. Its sha256 is always
    recorded in `xlsa17.zip.json` and in `xlsa17/.unseen-complete.json`;
    when `sha256` is given a mismatch deletes the download and raises `UnseenInputError`.
    A server that cannot be reached fails within `timeout` seconds with the manual steps.
    """
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / EXTRACTED_NAME
    marker = target / COMPLETE_MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if sha256 is None or recorded.get("sha256") == sha256.lower():
            return target
    archive = cache_dir / ARCHIVE_NAME
    sidecar = cache_dir / f"{ARCHIVE_NAME}.json"
    part = cache_dir / f"{ARCHIVE_NAME}.part"
    if not archive.is_file():
        _fetch(url, part, timeout, cache_dir)
        digest = _sha256(part)
        if sha256 is not None and digest != sha256.lower():
            part.unlink(missing_ok=True)
            raise UnseenInputError(f"{url}: expected sha256 {sha256.lower()}, found {digest}; "
                                   "the download was deleted. Run again, or "
                                   f"{_manual_steps(url, cache_dir)}")
        os.replace(part, archive)
        atomic_write_json(sidecar, {"url": url, "sha256": digest,
                                    "bytes": archive.stat().st_size})
    else:
        digest = _sha256(archive)
        if sha256 is not None and digest != sha256.lower():
            archive.unlink()
            raise UnseenInputError(f"{archive}: expected sha256 {sha256.lower()}, found "
                                   f"{digest}; the archive was deleted, run again to download")
        atomic_write_json(sidecar, {"url": url, "sha256": digest,
                                    "bytes": archive.stat().st_size})
    try:
        _extract(archive, target)
    except UnseenInputError:
        archive.unlink(missing_ok=True)  # a corrupt archive must not be reused next time
        raise
    atomic_write_json(marker, {"url": url, "sha256": digest})
    archive.unlink()  # extracted and recorded; the sidecar keeps its digest
    return target
