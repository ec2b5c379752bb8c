"""Local path or Hub id: decided before anything is looked up, so a mistyped path fails at once with a
clear error instead of minutes of Hub retries and a message about a repository nobody asked for."""

from __future__ import annotations

import os
import re
from pathlib import Path

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def looks_like_hub_id(source: str | os.PathLike) -> bool:
    """``owner/name`` (what ``from_pretrained`` / ``load_dataset`` would look up on the Hub), as opposed to a
    local path; ``data/units`` where ``data/`` is a local folder reads as a (missing) local path."""
    text = str(source)
    if _HUB_ID.fullmatch(text) is None or text.startswith((".", "~")) or ".." in text:
        return False
    return not Path(text.split("/", 1)[0]).is_dir()


def local_or_hub(source: str | os.PathLike, what: str) -> Path | str:
    """``source`` as an existing local ``Path``, or as a Hub id ``str``.

    Raises:
        FileNotFoundError: neither an existing file or folder nor a Hub id; the message names ``what``.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    if looks_like_hub_id(source):
        return str(source)
    raise FileNotFoundError(f"{what} {str(source)!r}: no such file or folder, and not a Hub id (owner/name)")
