"""The Keras callback's file in a ``BackupAndRestore``'s ``backup_dir``: its states, by epoch.

``BackupAndRestore``'s backup and this file are two writes, so a run can die
between them (in either callbacks' order), a full disk can fail one of them, a
``save_freq`` in batches restores the middle of an epoch whose end this file
already holds, and ``double_checkpoint=True`` can fall back to the backup before.
So the file keeps the callback's last :data:`KEPT` states, each keyed by the
epoch whose end it follows, and the fit resumes from the one that follows the
epoch before the first one it runs -- the epoch ``BackupAndRestore`` restored,
whichever callback wrote first. When the file holds no such state, resuming would
lose or count twice an epoch's metric: that is a ValueError naming the epochs.
The file is replaced atomically (``os.replace``): never half-written.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> backup = Backup(Path(tempfile.mkdtemp()) / "plateau_state.json")
    >>> for epoch in range(-1, 5):  # the start of the fit, then five epoch ends
    ...     backup.save(epoch, {"after": epoch})
    >>> backup.open()
    >>> backup.resume_at(4)  # BackupAndRestore restored the end of epoch 3
    {'after': 3}
    >>> backup.open()
    >>> backup.resume_at(1)
    Traceback (most recent call last):
    ...
    ValueError: ...: holds the states after epochs [4, 3, 2], none after epoch 0: ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plateau._checks import got
from plateau.adapters._keras_restore import BestWeights

__all__ = ["KEPT", "Backup"]

KEPT = 3
"""States kept: a callback listed first is ahead of ``BackupAndRestore`` by one epoch
at most, and ``double_checkpoint=True`` falls back one save more."""

_FORMAT = "plateau.keras.backup/1"


class Backup:
    """The states saved at each epoch end in one file, and the choice of one at resume.

    Args:
        path: The file (``backup_dir / "plateau_state.json"``).

    Attributes:
        waiting: True from :meth:`open` until :meth:`resume_at` has chosen.
        best: The best copy saved and resumed with each state (``restore_best_weights``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.waiting = False
        self.best: BestWeights | None = None
        self._kept: list[dict[str, Any]] = []  # newest first
        self._found: list[dict[str, Any]] | None = None

    def open(self, resuming: bool = True) -> None:
        """At train begin: read the file to resume from (when `resuming`), without choosing.

        The epoch the fit resumes at is known only when its first epoch begins, after
        every callback's ``on_train_begin`` (``BackupAndRestore``'s fallback included).

        Raises:
            ValueError: the file is unreadable or not this format, naming it.
        """
        self._found = self._read() if resuming and self.path.exists() else None
        self._kept, self.waiting = [], True

    def newest(self) -> Mapping[str, Any] | None:
        """The newest state :meth:`open` found, the likely one to resume from; None if none."""
        return None if not self._found else self._found[0]["state"]

    def resume_at(self, epoch: int) -> Mapping[str, Any] | None:
        """The state saved after ``epoch - 1``, at the first epoch begin of a fit; None if none.

        None: no file was found (a fresh start). The states older than it are kept.

        Raises:
            ValueError: the file holds no state after ``epoch - 1``; it names the epochs.
        """
        found, self._found, self.waiting = self._found, None, False
        if found is None:
            return None
        for i, entry in enumerate(found):
            if entry["epoch"] == epoch - 1:
                self._kept = found[i:]
                if self.best is not None and entry["best"] is not None:
                    try:
                        self.best.resume(entry["best"], epoch)
                    except (OSError, ValueError) as exc:
                        raise ValueError(f"{self.path}: cannot resume from it: {exc}") from exc
                return entry["state"]  # type: ignore[no-any-return]
        epochs = [entry["epoch"] for entry in found]
        why = (
            f"the metric of epochs {list(range(epochs[0] + 1, epoch))} was never seen: the run "
            "stopped between BackupAndRestore's save and this callback's (list "
            "ReduceLROnPlateau before BackupAndRestore in callbacks)"
            if epochs[0] < epoch - 1
            else f"BackupAndRestore went back further than the {KEPT} states kept"
        )
        raise ValueError(
            f"{self.path}: holds the states after epochs {epochs}, none after epoch "
            f"{epoch - 1}: the fit resumes at epoch {epoch}, and {why}"
        )

    def save(self, epoch: int, state: Mapping[str, Any]) -> None:
        """Keep `state` as the one after `epoch` (-1: the fit's start), and write the file."""
        best = None if self.best is None else self.best.meta()
        entry = {"epoch": epoch, "state": dict(state), "best": best}
        self._kept = [entry, *(e for e in self._kept if e["epoch"] < epoch)][:KEPT]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"format": _FORMAT, "states": self._kept}, allow_nan=False))
        os.replace(temporary, self.path)
        if self.best is not None:  # the copies no kept state names
            self.best.prune({e["best"]["best_epoch"] for e in self._kept if e["best"]})

    def remove(self) -> None:
        """Delete the file: the fit completed."""
        self.path.unlink(missing_ok=True)
        self._kept = []
        if self.best is not None:
            self.best.prune(())

    def _read(self) -> list[dict[str, Any]]:
        try:
            d = json.loads(self.path.read_text())
            if not isinstance(d, dict) or d.get("format") != _FORMAT:
                raise ValueError(f"not a {_FORMAT!r} file")
            states = d["states"]
            good = isinstance(states, list) and states and all(_is_entry(e) for e in states)
            if not good:
                raise ValueError(f"'states' must be a list of epochs and states, got {got(states)}")
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{self.path}: cannot resume from it: {exc}") from exc
        return states  # type: ignore[no-any-return]


def _is_entry(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and set(entry) == {"epoch", "state", "best"}
        and type(entry["epoch"]) is int
        and isinstance(entry["state"], dict)
    )
