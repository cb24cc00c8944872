"""Where unseen keeps what it builds, and where the data packages it reads are installed."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from unseen.errors import UnseenInputError


def cache_root() -> Path:
    """`$UNSEEN_CACHE`, else `~/.cache/unseen`: embedded data sets, the xlsa17 download and
    DUET's pixel caches live under it."""
    return Path(os.environ.get("UNSEEN_CACHE") or Path.home() / ".cache" / "unseen").expanduser()


def installed_package_dir(module: str, distribution: str, carries: str) -> Path:
    """The directory of an installed data package (`make install` adds them without their
    declared dependencies); a clear error names the distribution when it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UnseenInputError(f"package '{distribution}': expected it installed (it carries "
                               f"{carries}; `make install` adds it), found it missing")
    return Path(next(iter(spec.submodule_search_locations)))
