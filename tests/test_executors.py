"""Executors: real subprocesses, real plugins through their entry point, real threads and a real kernel."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from playbook_nb.adapters.executors import (
    AttemptResult,
    GateRequest,
    gate_request,
    run_command,
    run_function,
    run_python,
)
from playbook_nb.domain.model import DEFAULT_MANUAL_PROMPT, Node, NodeType

# ---------------------------------------------------------------------------------------------- helpers


def live_members(pgid: int) -> list[psutil.Process]:
    """Processes of group `pgid` that still run (zombies waiting for a reaper do not run)."""
    alive = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def assert_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 2
    while live_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_members(pgid) == []
    zombies_only = any(
        p.info["status"] == psutil.STATUS_ZOMBIE
        for p in psutil.process_iter(["status"])
        if _pgid_or_none(p.pid) == pgid
    )
    if not zombies_only:  # where PID 1 reaps orphans (normal systems), the group is gone for the kernel too
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)


def _pgid_or_none(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


class Recorder:
    def __init__(self):
        self.calls: list[tuple[str, str, float]] = []
        self.threads: set[int] = set()

    def __call__(self, stream: str, text: str) -> None:
        self.calls.append((stream, text, time.time()))
        self.threads.add(threading.get_ident())

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(s, t) for s, t, _ in self.calls]


# ---------------------------------------------------------------------------------------------- command


def test_echo_succeeds():
    result = run_command("echo hello", timeout=10)
    assert result.ok
    assert result.exit_code == 0
    assert result.stdout == "hello\n"
    assert result.stderr == ""
    assert result.error is None
    assert 0 <= result.duration < 5
    assert result.started_at <= result.ended_at


def test_non_zero_exit_fails_with_its_code():
    result = run_command("echo partial; echo broken >&2; exit 3", timeout=10)
    assert not result.ok
    assert result.exit_code == 3
    assert result.error == "exit code 3"
    assert result.stdout == "partial\n"
    assert result.stderr == "broken\n"


def test_a_command_killed_by_a_signal_says_so():
    result = run_command("kill -9 $$", timeout=10)
    assert not result.ok
    assert result.exit_code == -9
    assert result.error == "exit code -9 (killed by SIGKILL)"


def test_stdout_and_stderr_are_streamed_live_in_order():
    rec = Recorder()
    result = run_command(
        "echo one; sleep 0.2; echo two >&2; sleep 0.2; printf 'three\\nfour'; sleep 1",
        timeout=10,
        on_output=rec,
    )
    assert result.ok
    assert rec.pairs == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n"), ("stdout", "four")]
    # Live: the first line arrived long before the command ended, on the caller's thread.
    assert rec.calls[0][2] < result.ended_at - 1
    assert rec.threads == {threading.get_ident()}
    assert result.stdout == "one\nthree\nfour"
    assert result.stderr == "two\n"


def test_a_failing_callback_does_not_break_the_command():
    def explode(stream, text):
        raise RuntimeError("face is broken")

    result = run_command("seq 1 20000", timeout=10, on_output=explode)
    assert result.ok
    assert result.stdout.endswith("20000\n")


def test_timeout_kills_the_whole_process_group():
    rec = Recorder()
    started = time.monotonic()
    result = run_command("echo $$; sh -c 'sleep 30 & sleep 30'; echo x", timeout=0.5, on_output=rec)
    elapsed = time.monotonic() - started
    assert elapsed < 3
    assert not result.ok
    assert result.exit_code is None
    assert result.error == "Command timed out after 0.5 seconds"
    assert "x" not in result.stdout
    pgid = int(rec.pairs[0][1])
    assert_group_gone(pgid)


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored():
    rec = Recorder()
    started = time.monotonic()
    result = run_command("trap '' TERM; echo $$; sleep 30 & wait; echo done", timeout=0.3, on_output=rec)
    assert time.monotonic() - started < 4
    assert result.error == "Command timed out after 0.3 seconds"
    assert_group_gone(int(rec.pairs[0][1]))


def test_an_interrupt_while_waiting_kills_the_group():
    # A kernel interrupt is a KeyboardInterrupt in the thread that runs the command.
    rec = Recorder()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run_command("echo $$; sleep 30", timeout=60, on_output=rec)
    timer.join()
    assert_group_gone(int(rec.pairs[0][1]))


def test_output_is_bounded_keeping_head_and_tail():
    result = run_command("seq 1 1000000", timeout=30, max_output_bytes=2000)
    total = sum(len(str(i)) + 1 for i in range(1, 1_000_001))
    assert result.ok
    assert result.truncated
    head, marker, tail = result.stdout.partition("[... output truncated: ")
    assert marker
    dropped_text, _, tail = tail.partition(" bytes dropped ...]\n")
    assert head.startswith("1\n2\n3\n")
    assert tail.endswith("999999\n1000000\n")
    assert len(head.encode()) + int(dropped_text) + len(tail.encode()) == total
    assert len(result.stdout) < 2200


def test_five_megabytes_on_one_line_are_truncated():
    result = run_command(
        "head -c 5000000 /dev/zero | tr '\\0' 'a'; echo; echo end >&2", timeout=30, max_output_bytes=10_000
    )
    assert result.ok
    assert result.truncated
    lines = result.stdout.split("\n")
    assert lines[0] == "a" * 5000
    assert lines[1] == "[... output truncated: 4990001 bytes dropped ...]"  # 5_000_001 - 2 * 5000
    assert lines[2] == "a" * 4999 and lines[3] == ""
    assert result.stderr == "end\n"


def test_stdin_is_dev_null_unless_interactive():
    result = run_command("cat; echo after", timeout=5)
    assert result.ok
    assert result.stdout == "after\n"


def test_interactive_commands_inherit_stdin(tmp_path):
    # Run a child python whose stdin is a file: with stdin_tty=True the command reads it.
    source = tmp_path / "answer.txt"
    source.write_text("yes\n")
    script = (
        "from playbook_nb.adapters.executors import run_command\n"
        "r = run_command('read a; echo got=$a', timeout=5, stdin_tty=True)\n"
        "print(r.stdout, end='')\n"
    )
    with source.open() as stdin:
        out = subprocess.run(
            [sys.executable, "-c", script], stdin=stdin, capture_output=True, text=True, timeout=30
        )
    assert out.stdout == "got=yes\n", out.stderr


def test_env_and_cwd(tmp_path):
    result = run_command(
        'echo "$PBNB_GREETING"; pwd; echo "${HOME:-no home}"',
        timeout=5,
        env={"PBNB_GREETING": "hi there", "PATH": os.environ["PATH"]},
        cwd=str(tmp_path),
    )
    assert result.ok
    assert result.stdout.splitlines() == ["hi there", str(tmp_path), "no home"]


def test_a_missing_cwd_is_a_failed_attempt(tmp_path):
    result = run_command("echo x", timeout=5, cwd=str(tmp_path / "missing"))
    assert not result.ok
    assert result.error.startswith("cannot start command: ")


def test_background_process_holding_the_pipe_does_not_hang_the_node():
    started = time.monotonic()
    result = run_command("echo started; sleep 30 &", timeout=20)
    assert time.monotonic() - started < 5
    assert result.ok
    assert result.stdout == "started\n"


def test_commands_run_from_threads():
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: run_command(f"sleep 0.3; echo {i}", timeout=10), range(4)))
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]
    with ThreadPoolExecutor(1) as pool:
        timed_out = pool.submit(run_command, "sleep 30", timeout=0.3).result(timeout=10)
    assert timed_out.error == "Command timed out after 0.3 seconds"


def test_run_command_when_sys_stdout_is_not_a_real_file(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    result = run_command("echo fine", timeout=5)
    assert result.stdout == "fine\n"


# ---------------------------------------------------------------------------------------------- result


def test_attempt_result_to_dict_is_json_safe():
    class Thing:
        def __repr__(self):
            return "<thing>"

    result = AttemptResult(ok=True, return_value={"a": Thing()}, started_at=10.0, ended_at=12.5)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["return_value"] == "{'a': <thing>}"
    assert data["duration"] == 2.5
    assert AttemptResult(ok=True, return_value=[1, "x"]).to_dict()["return_value"] == [1, "x"]
    assert AttemptResult(ok=False).duration == 0.0


# ---------------------------------------------------------------------------------------------- python


def test_run_python_defines_names_and_captures_print(capsys):
    namespace: dict = {}
    result = run_python("x = 41\nprint('hello')\ndef bump(v):\n    return v + 1\nbump(x)", namespace)
    assert result.ok
    assert result.stdout == "hello\n"
    assert result.return_value == 42
    assert namespace["x"] == 41
    assert namespace["bump"](1) == 2
    # Still shown: teed to the stream that was in place.
    assert capsys.readouterr().out == "hello\n"
    # A later node sees what an earlier one defined.
    assert run_python("y = bump(x) * 2", namespace).ok
    assert namespace["y"] == 84


def test_run_python_reports_an_exception_with_node_frames_only(capsys):
    code = "import json\n\ndef parse():\n    return json.loads('{')\n\nparse()\n"
    result = run_python(code, {}, filename="<node parse_step>")
    assert not result.ok
    assert result.error.startswith("JSONDecodeError: Expecting property name")
    assert "Traceback (most recent call last):" in result.stderr
    assert 'File "<node parse_step>", line 6, in <module>' in result.stderr
    assert 'File "<node parse_step>", line 4, in parse' in result.stderr
    assert "return json.loads('{')" in result.stderr
    assert "playbook_nb" not in result.stderr
    assert "json/decoder.py" not in result.stderr
    assert "JSONDecodeError" in capsys.readouterr().err


def test_run_python_syntax_error_and_exit():
    result = run_python("def broken(:\n    pass", {}, filename="<node s>")
    assert not result.ok
    assert result.error == "SyntaxError: invalid syntax (line 1)"
    assert 'File "<node s>", line 1' in result.stderr
    assert run_python("import sys\nsys.exit(0)", {}).ok
    failed = run_python("import sys\nsys.exit(4)", {})
    assert not failed.ok and failed.error == "SystemExit: 4"
    raised = run_python("raise ValueError('bad\\ninput')", {})
    assert raised.error == "ValueError: bad input"


def test_run_python_streams_lines_to_on_output(capsys):
    rec = Recorder()
    result = run_python(
        "import sys\nprint('a', end='')\nprint('b')\nprint('warn', file=sys.stderr)\nprint('tail', end='')",
        {},
        on_output=rec,
    )
    assert result.ok
    assert rec.pairs == [("stdout", "ab\n"), ("stderr", "warn\n"), ("stdout", "tail")]
    assert result.stdout == "ab\ntail"
    assert capsys.readouterr().out == ""  # on_output shows it; not written twice


def test_run_python_on_output_may_print_itself(capsys):
    result = run_python("print('x')", {}, on_output=lambda s, t: print(f"[{s}] {t}", end=""))
    assert result.stdout == "x\n"
    assert capsys.readouterr().out == "[stdout] x\n"


def test_concurrent_captures_keep_their_own_output():
    code = "import time\nfor i in range(50):\n    print(MARK, i)\n    time.sleep(0.002)\n"

    def run(mark: str) -> AttemptResult:
        return run_python(code, {"MARK": mark}, on_output=lambda s, t: None)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, ["A", "B", "C"]))
    for mark, result in zip("ABC", results, strict=True):
        lines = result.stdout.splitlines()
        assert lines == [f"{mark} {i}" for i in range(50)]
    assert not hasattr(sys.stdout, "original")  # the router is gone once no capture is active


# ---------------------------------------------------------------------------------------------- function


def test_run_function_notify_returns_and_captures_the_message():
    rec = Recorder()
    result = run_function("python", "notify", {"message": "deployed"}, plugin_config={}, on_output=rec)
    assert result.ok
    assert result.return_value == "deployed"
    assert result.stdout == "deployed\n"
    assert rec.pairs == [("stdout", "deployed\n")]
    warned = run_function(
        "python", "notify", {"message": "disk 91%", "level": "warning"}, plugin_config={}, on_output=rec
    )
    assert warned.stdout == "[WARNING] disk 91%\n"


def test_run_function_converts_string_params():
    result = run_function("python", "sleep", {"seconds": "0.05"}, plugin_config={})
    assert result.ok
    assert result.return_value == 0.05
    assert result.duration >= 0.05


def test_run_function_throw_fails_the_attempt():
    result = run_function("python", "throw", {"message": "drill: fail here"}, plugin_config={})
    assert not result.ok
    assert result.error == "ThrownError: drill: fail here"
    assert result.return_value is None


def test_run_function_timeout():
    started = time.monotonic()
    result = run_function("python", "sleep", {"seconds": 30}, plugin_config={}, timeout=0.3)
    assert time.monotonic() - started < 2
    assert not result.ok
    assert result.error == "Function timed out after 0.3 seconds"


@pytest.mark.parametrize(
    ("plugin", "function", "params", "error"),
    [
        (
            "nope",
            "x",
            {},
            "unknown plugin 'nope' (available: http, metrics_publish, python, schema_check, ui_screenshot)",
        ),
        ("python", "nope", {}, "plugin 'python' has no function 'nope' (available: notify, sleep, throw)"),
        ("python", "sleep", {}, "plugin 'python', function 'sleep': missing required parameter 'seconds'"),
    ],
)
def test_run_function_user_errors_are_one_line(plugin, function, params, error):
    result = run_function(plugin, function, params, plugin_config={})
    assert not result.ok
    assert result.error == error
    assert result.stderr == ""


def test_run_function_expands_env_in_plugin_config(monkeypatch):
    monkeypatch.delenv("PBNB_NO_SUCH_VAR", raising=False)
    result = run_function(
        "python", "notify", {"message": "x"}, plugin_config={"webhook_url": "${PBNB_NO_SUCH_VAR}"}
    )
    assert not result.ok
    assert result.error == (
        "plugin 'python', plugin_config.webhook_url: environment variable 'PBNB_NO_SUCH_VAR' is not set"
    )
    monkeypatch.setenv("PBNB_NO_SUCH_VAR", "https://example.invalid/hook")
    assert run_function("python", "notify", {"message": "x"}, plugin_config={"u": "${PBNB_NO_SUCH_VAR}"}).ok


# ---------------------------------------------------------------------------------------------- manual


def test_gate_request_is_plain_data():
    node = Node(
        id="approve",
        type=NodeType.MANUAL,
        order=2,
        name="Approve deploy",
        description="Check the dashboards first.",
        prompt_before="Look at {{ DASH }}",
    )
    request = gate_request(node, "Look at https://grafana/x", "Proceed with deployment to prod?")
    assert request == GateRequest(
        node_id="approve",
        prompt="Proceed with deployment to prod?",
        description="Check the dashboards first.",
        label="Approve deploy",
        prompt_before="Look at https://grafana/x",
    )
    assert json.loads(json.dumps(request.to_dict()))["node_id"] == "approve"
    default = gate_request(Node(id="gate", type=NodeType.MANUAL, order=0), None, "")
    assert default.prompt == DEFAULT_MANUAL_PROMPT
    assert default.prompt_before is None
    assert default.label == "gate"


# ---------------------------------------------------------------------------------------------- kernel


@pytest.mark.slow
def test_executors_inside_a_real_ipython_kernel():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "from playbook_nb.adapters.executors import run_command, run_python\n"
        "r = run_command('echo from-shell; echo oops >&2', timeout=10,\n"
        "                on_output=lambda s, t: print(f'[{s}] {t}', end=''))\n"
        "print(r.ok, repr(r.stdout))",
        'r2 = run_python("from IPython.display import HTML, display\\n"\n'
        "                \"display(HTML('<b>table</b>'))\\n\"\n"
        "                \"print('printed')\\n\"\n"
        "                \"y = 5\", get_ipython().user_ns, filename='<node p>')\n"
        "print(r2.ok, repr(r2.stdout))",
        "print(y)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()

    def text_of(cell) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    first, second, third = nb.cells
    assert text_of(first) == "[stdout] from-shell\n[stderr] oops\nTrue 'from-shell\\n'\n"
    assert text_of(second) == "printed\nTrue 'printed\\n'\n"
    html = [o for o in second.outputs if o.output_type == "display_data"]
    assert html and html[0]["data"]["text/html"] == "<b>table</b>"
    assert text_of(third) == "5\n"


# --- Abort and timeouts for every kind of node (issue 13 point 4) ------------------------------------------


def _set_after(seconds: float):
    import threading

    event = threading.Event()
    timer = threading.Timer(seconds, event.set)
    timer.daemon = True
    timer.start()
    return event


def test_a_cancel_event_stops_a_commands_whole_group():
    import os

    groups = []
    cancel = _set_after(0.3)
    result = run_command(
        "sh -c 'sleep 30' & sleep 31; echo never", timeout=None, cancel=cancel, on_spawn=groups.append
    )
    assert result.interrupted and not result.ok and result.error == "interrupted"
    assert "never" not in result.stdout
    assert len(groups) == 1
    alive = []
    for entry in os.listdir("/proc"):  # nothing of the group is left (zombies waiting for init do not count)
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes() if entry.isdigit() else b""
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == groups[0] and fields[0] not in (b"Z", b"X"):
            alive.append(entry)
    assert alive == []


def test_python_node_timeout_and_cancel_stop_the_code():
    import time

    from playbook_nb.adapters.executors import run_python

    started = time.monotonic()
    result = run_python("import time\ntime.sleep(30)", {}, timeout=0.3)
    assert time.monotonic() - started < 5
    assert not result.ok and result.error == "Python node timed out after 0.3 seconds"
    # code that swallows exceptions is stopped too (NodeStopped is not an Exception)
    code = "import time\nwhile True:\n    try:\n        time.sleep(30)\n    except Exception:\n        pass"
    result = run_python(code, {}, cancel=_set_after(0.3))
    assert result.interrupted and result.error == "interrupted"


def test_function_node_timeout_and_cancel_stop_the_plugin_thread():
    import threading
    import time

    from playbook_nb.adapters.executors import run_function

    before = threading.active_count()
    started = time.monotonic()
    result = run_function("python", "sleep", {"seconds": "30"}, plugin_config={}, timeout=0.3)
    assert time.monotonic() - started < 5
    assert not result.ok and result.error == "Function timed out after 0.3 seconds"
    result = run_function("python", "sleep", {"seconds": "30"}, plugin_config={}, cancel=_set_after(0.3))
    assert result.interrupted
    time.sleep(0.2)
    assert threading.active_count() <= before  # the plugin's thread did not live on


def test_secret_free_command_line_and_token_in_the_environment():
    from playbook_nb.adapters.executors.tether import TOKEN_ENV

    result = run_command(f'echo "${TOKEN_ENV}"', timeout=10)
    assert result.ok and len(result.stdout.strip()) == 32  # every command carries its attempt's token


def test_a_command_env_is_the_driver_environment_with_its_extras(monkeypatch):
    """CommandEnv (this process's environment in bytes, the node's variables on top, issue 18.2) starts a
    command with exactly the environment the plain `{**os.environ, **extra}` dict gives it."""
    from playbook_nb.adapters.executors.tether import TOKEN_ENV
    from playbook_nb.app.ports import CommandEnv

    monkeypatch.setenv("PBT_ODD", "a b=c \u00e9 \U0001f600")
    monkeypatch.setenv("HOME", "/home/before")
    extra = {"PLAYBOOK_RUN_ID": "7", "PLAYBOOK_NODE_ID": "n1", "HOME": "/elsewhere", "PBT_SECRET": "s3"}
    env = CommandEnv(extra)
    expected = {**os.environ, **extra}
    assert dict(env) == expected and list(env) == list(expected) and env["PBT_ODD"] == os.environ["PBT_ODD"]
    dump = f"{sys.executable} -I -c 'import json, os; print(json.dumps(dict(os.environ)))'"
    seen = []
    for given in (env, dict(expected)):
        result = run_command(dump, timeout=30, env=given)
        assert result.ok, result.stderr
        got = json.loads(result.stdout)
        assert len(got.pop(TOKEN_ENV)) == 32
        seen.append(got)
    assert seen[0] == seen[1]
    assert {k: v for k, v in seen[0].items() if k not in ("PWD", "SHLVL", "_")} == {
        k: v for k, v in expected.items() if k not in ("PWD", "SHLVL", "_")
    }
    monkeypatch.setenv("PBT_LATER", "1")  # the environment as it was when the call was built
    assert "PBT_LATER" not in env and "PBT_LATER" in CommandEnv()
