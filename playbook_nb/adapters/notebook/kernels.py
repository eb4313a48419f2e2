"""The kernel a headless run starts, and `playbook-nb kernel install`.

- Transport: on Linux and macOS the kernel listens on Unix sockets (ZeroMQ `ipc`) in a private directory
  (mode 0700, removed after the run), never on TCP ports: no other local user can connect to it, secrets in
  its messages never cross a network socket, and ipykernel's "Kernel is running over TCP without
  encryption" warning does not apply. Elsewhere (Windows) jupyter_client's TCP default stays.
- Environment: what the run hands the kernel (secret values, the output path, flags) is given to the kernel
  process at start (`start_kernel(env=...)`), on top of this process's environment. This process's own
  `os.environ` is never changed, so no other thread, child or log of it ever sees a secret.
- Standard error: the kernel's own (ipykernel's log, a shutdown race's "Uncaught exception in ZMQStream
  callback") goes to a file in the socket directory, not to the terminal of the run: what a cell writes to
  stderr reaches the notebook through the kernel's messages anyway. Only when the kernel died is the file's
  tail copied to this process's stderr, since it may say why (a segfault, an out-of-memory kill).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

IPC_SUPPORTED = sys.platform != "win32"


STDERR_TAIL_LINES = 20


def kernel_manager_class(
    env: Mapping[str, str], socket_dir: str | None, stderr: IO[bytes] | None = None
) -> type:
    """An AsyncKernelManager class (nbclient builds its own instance) that starts its kernel with `env` added
    to the inherited environment, given `socket_dir` over IPC sockets in it, given `stderr` writing its
    standard error there."""
    from jupyter_client.manager import AsyncKernelManager

    extra_env = {str(name): str(value) for name, value in env.items()}

    class PlaybookKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            if socket_dir is not None:
                kwargs.setdefault("transport", "ipc")
                kwargs.setdefault("ip", os.path.join(socket_dir, "kernel"))
            super().__init__(**kwargs)

        async def _async_pre_start_kernel(self, **kwargs: Any):
            inherited = kwargs.pop("env", None)
            kwargs["env"] = {**(inherited if inherited is not None else os.environ), **extra_env}
            cmd, launch = await super()._async_pre_start_kernel(**kwargs)
            if stderr is not None:
                launch["stderr"] = stderr
            return cmd, launch

    return PlaybookKernelManager


@contextlib.contextmanager
def headless_kernel(env: Mapping[str, str]) -> Iterator[type]:
    """The kernel manager class for one run; its socket directory lives as long as the block."""
    from nbclient.exceptions import DeadKernelError  # already loaded: papermill's engine calls this

    socket_dir = tempfile.mkdtemp(prefix="pbnb-") if IPC_SUPPORTED else None  # short: sun_path is ~104 bytes
    try:
        with tempfile.TemporaryFile(prefix="kernel-stderr-", dir=socket_dir) as stderr:
            try:
                yield kernel_manager_class(env, socket_dir, stderr)
            except DeadKernelError:
                _echo_tail(stderr)
                raise
    finally:
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)


def _echo_tail(stderr: IO[bytes]) -> None:
    """The last lines the kernel wrote to its standard error, on this process's, marked as the kernel's."""
    stderr.seek(0, os.SEEK_END)
    stderr.seek(max(0, stderr.tell() - 8192))
    lines = stderr.read().decode("utf-8", "replace").splitlines()[-STDERR_TAIL_LINES:]
    if lines:
        sys.stderr.write("".join(f"kernel stderr: {line}\n" for line in lines))
        sys.stderr.flush()


def kernelspec_of(name: str) -> dict[str, str]:
    """The notebook metadata for the installed kernel `name`; a PlaybookError naming it when there is none."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from playbook_nb.domain.errors import PlaybookError

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise PlaybookError(
            f"--kernel {name}: no such kernel (see `jupyter kernelspec list`, or `playbook-nb kernel install`)"
        ) from None
    return {"name": name, "display_name": spec.display_name or name, "language": spec.language or "python"}


def install_kernelspec(name: str, display_name: str | None, user: bool, prefix: str | None) -> str:
    """Register a kernelspec that starts this environment's Python (ipykernel); return where it went."""
    from ipykernel.kernelspec import install

    return install(
        user=user,
        kernel_name=name,
        display_name=display_name
        or f"Python {sys.version_info.major}.{sys.version_info.minor} (playbook-nb)",
        prefix=prefix,
    )
