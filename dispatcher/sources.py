"""The recipient file kept with its campaign, so exports can give back its original columns.

The ``messages`` table keeps what sending needs (number, text, line), not the marketer's other
columns (customer id, store, segment...), and the results are only useful to a marketer beside
them. So the file a campaign was created from is copied under the state directory
(``<state dir>/sources/campaign-<id><suffix>``, path stored in ``campaigns.source_file``) and the
export joins its records to the messages by their line number (:mod:`dispatcher.export`). A
deleted draft takes its file with it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["forget_source", "keep_source", "sources_dir"]


def sources_dir(state_dir: Path) -> Path:
    """Where kept files live."""
    return state_dir / "sources"


def keep_source(state_dir: Path, campaign_id: int, path: Path) -> Path:
    """Copy ``path`` beside the campaign's other state; the copy's path."""
    directory = sources_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"campaign-{campaign_id}{path.suffix.lower()[:16]}"
    shutil.copyfile(path, target)
    return target


def forget_source(state_dir: Path, stored: str) -> None:
    """Remove a kept file; only one inside our own ``sources`` directory (``stored`` may be a
    path from before files were kept: the user's own file, never ours to delete)."""
    if not stored:
        return
    path = Path(stored)
    if path.parent.resolve() == sources_dir(state_dir).resolve():
        path.unlink(missing_ok=True)
