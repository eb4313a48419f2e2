"""The user's configuration, data, state and cache directories of playbook-nb: platformdirs' answer.

On Linux with an absolute `HOME` that answer is the XDG rule, computed here without importing platformdirs
(its modules, with tempfile and random, cost about 2 ms at every command start; `runs list` reads the
configuration and opens the index, which ask for two of these directories): `$XDG_CONFIG_HOME` (and its
siblings) when it is an absolute path, else `~/.config` (`~/.local/share`, `~/.local/state`, `~/.cache`),
then `playbook-nb`. Anywhere else platformdirs decides. `tests/test_user_dirs.py` checks both agree.
"""

from __future__ import annotations

import os
import sys

APP_NAME = "playbook-nb"

_XDG = {
    "config": ("XDG_CONFIG_HOME", ".config"),
    "data": ("XDG_DATA_HOME", ".local/share"),
    "state": ("XDG_STATE_HOME", ".local/state"),
    "cache": ("XDG_CACHE_HOME", ".cache"),
}


def user_dir(kind: str) -> str:
    """platformdirs' `user_<kind>_dir("playbook-nb")` for `kind` config, data, state or cache."""
    variable, default = _XDG[kind]
    home = os.environ.get("HOME", "")
    android = hasattr(sys, "getandroidapilevel") or "ANDROID_DATA" in os.environ
    if sys.platform.startswith("linux") and not android and os.path.isabs(home):
        base = os.environ.get(variable, "")
        return os.path.join(base if os.path.isabs(base) else os.path.join(home, default), APP_NAME)
    import platformdirs

    return str(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME))
