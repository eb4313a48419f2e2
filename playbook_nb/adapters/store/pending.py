"""Runs that a storage fault left RUNNING are recorded ABORTED as soon as the index is writable again.

When a run meets a storage fault (disk full, read-only, a lock held too long), its session stops the commands
and tries for a few seconds to record the run ABORTED. If the index still refuses, a small note is left
outside it (in the user's state directory, else the temporary directory: rarely on the same full disk), and
the next `Store.open` of that index, by any command, applies it: the attempt in flight INTERRUPTED, the node
PENDING with the reason, the run ABORTED and resumable.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from playbook_nb.domain.errors import StorageFault, StoreError

if TYPE_CHECKING:
    from playbook_nb.adapters.store.base import Store


def _state_dir() -> list[Path]:
    with contextlib.suppress(Exception):
        from playbook_nb.user_dirs import user_dir

        return [Path(user_dir("state")) / "pending-aborts"]
    return []


def _in_temp(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / f"playbook-nb-pending-aborts-{os.getuid()}"


def _dirs() -> list[Path]:
    """Where a note is written: the user's state directory, else the temporary directory."""
    import tempfile  # at use: only a run that met a storage fault writes a note

    return [*_state_dir(), _in_temp(tempfile.gettempdir())]


def _note_dirs() -> list[Path]:
    """Where a note may be: the state directory, and each directory tempfile.gettempdir() may have chosen
    (TMPDIR, TEMP, TMP, /tmp, /var/tmp, /usr/tmp, the current directory; the first writable one), so that
    opening an index reads them without importing tempfile, random and its hashes (about 1 ms)."""
    if os.name != "posix":
        return _dirs()
    candidates = [os.environ[name] for name in ("TMPDIR", "TEMP", "TMP") if os.environ.get(name)]
    candidates += ["/tmp", "/var/tmp", "/usr/tmp"]
    with contextlib.suppress(OSError):
        candidates.append(os.getcwd())
    found = _state_dir()
    for candidate in candidates:
        directory = _in_temp(os.path.abspath(candidate))
        if directory not in found:
            found.append(directory)
    return found


def _key(store: Store) -> str:
    import hashlib  # at use: hashlib loads OpenSSL (2 ms at every start otherwise)

    return hashlib.sha256(store.url.encode()).hexdigest()[:16]


def remember(store: Store, run_id: int, reason: str) -> Path | None:
    """Leave the note; returns where it was written (None when nowhere could take it)."""
    text = json.dumps({"index": store.url, "run_id": run_id, "reason": reason, "at": time.time()})
    for directory in _dirs():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{_key(store)}-{int(run_id)}.json"
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def record_aborted(store: Store, run_id: int, reason: str) -> None:
    """Attempts in flight INTERRUPTED (their nodes PENDING with the reason), the run ABORTED, if it is still
    RUNNING. Raises StoreError when the index refuses."""
    if store.get_run(run_id).status != "RUNNING":
        return
    store.mark_interrupted(run_id)
    store.set_run_status(run_id, "ABORTED", reason=reason)


def apply(store: Store) -> list[int]:
    """Record the notes left for this index; returns the runs recorded ABORTED now."""
    done: list[int] = []
    prefix = ""  # the index's key, hashed only when some directory holds a note (a start stays light)
    for directory in _note_dirs():
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue
        if entries and not prefix:
            prefix = _key(store) + "-"
        notes = sorted(p for p in entries if p.name.startswith(prefix))
        for note in notes:
            try:
                data = json.loads(note.read_text())
                if data.get("index") != store.url:
                    continue
                record_aborted(store, int(data["run_id"]), str(data["reason"]))
            except StorageFault:
                continue  # still not writable: the note waits for the next open
            except (StoreError, OSError, ValueError, KeyError):
                pass  # the run is gone, or the note is unreadable: nothing to record
            with contextlib.suppress(OSError):
                note.unlink()
                done.append(int(data["run_id"]))
    return done
