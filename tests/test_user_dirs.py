"""playbook_nb.user_dirs gives platformdirs' directories without importing it on Linux (issue 18.1): the same
answer as platformdirs for every XDG setting, and `runs list` no longer loads it."""

from __future__ import annotations

import platformdirs
import pytest

from playbook_nb.user_dirs import APP_NAME, user_dir

KINDS = ["config", "data", "state", "cache"]
VARIABLES = {
    "config": "XDG_CONFIG_HOME",
    "data": "XDG_DATA_HOME",
    "state": "XDG_STATE_HOME",
    "cache": "XDG_CACHE_HOME",
}
SETTINGS = {
    "unset": None,
    "absolute": "/srv/xdg/",
    "relative": "relative/xdg",  # not absolute: ignored, as the XDG specification says
    "empty": "",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("home", ["/home/alice", "/home/bob/", "/"], ids=["home", "home_slash", "root"])
def test_a_user_directory_is_platformdirs_own(monkeypatch, kind, setting, home):
    monkeypatch.setenv("HOME", home)
    if SETTINGS[setting] is None:
        monkeypatch.delenv(VARIABLES[kind], raising=False)
    else:
        monkeypatch.setenv(VARIABLES[kind], SETTINGS[setting])
    expected = getattr(platformdirs, f"user_{kind}_dir")(APP_NAME)
    assert user_dir(kind) == expected
