"""A note left for a run that a storage fault left RUNNING is applied by the next open of its index, wherever
it was written: the state directory, or the temporary directory when the state directory refuses it (the next
open finds it without asking tempfile, issue 18.1)."""

from __future__ import annotations

import pytest

from playbook_nb.adapters.store import Store, pending
from tests.conftest import new_run


@pytest.mark.parametrize("where", ["state_dir", "temp_dir"])
def test_the_next_open_records_aborted_a_run_a_note_was_left_for(tmp_path, monkeypatch, where):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr("tempfile.tempdir", None)  # gettempdir() reads TMPDIR again
    if where == "state_dir":
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    else:
        (tmp_path / "not-a-dir").write_text("")  # the state directory cannot be made
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "not-a-dir"))
    db = tmp_path / "index.db"
    with Store.open(db) as store:
        run = new_run(store)
        written = pending.remember(store, run.id, "disk full while recording")
    assert written is not None
    assert (temp in written.parents) == (where == "temp_dir")
    with Store.open(db) as store:  # the next open, by any command
        again = store.get_run(run.id)
    assert again.status == "ABORTED" and again.status_reason == "disk full while recording"
    assert not written.exists()
