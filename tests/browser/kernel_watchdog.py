"""IPython startup file for the kernels of the browser tests' JupyterLab (copied into its IPYTHONDIR).

A thread asks the kernel's main event loop to run a no-op every half second. When the loop has not run it
for STALL seconds, the thread writes the main thread's stack to the kernel's stderr, which is the lab log a
failed browser test keeps. It says where a kernel that answers late was stuck (a test once saw a kernel stay
silent for 10 s although it was idle). It writes at most once per stall, and again when the loop is back.
"""

import sys
import threading
import time
import traceback

STALL = 3.0


def _watch() -> None:
    from ipykernel.kernelbase import Kernel

    while not (Kernel.initialized() and getattr(Kernel.instance(), "io_loop", None) is not None):
        time.sleep(0.5)
    kernel = Kernel.instance()
    main = threading.main_thread().ident
    ran = [time.monotonic()]

    def tick() -> None:
        ran[0] = time.monotonic()

    reported = False
    while True:
        asked = time.monotonic()
        kernel.io_loop.add_callback(tick)
        time.sleep(0.5)
        late = time.monotonic() - ran[0]
        if late > STALL and not reported and ran[0] < asked:
            frame = sys._current_frames().get(main)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)\n"
            sys.__stderr__.write(
                f"[kernel watchdog {time.strftime('%H:%M:%S')}] main loop blocked for {late:.1f} s; "
                f"main thread:\n{stack}"
            )
            sys.__stderr__.flush()
            reported = True
        elif reported and late < STALL:
            sys.__stderr__.write(f"[kernel watchdog {time.strftime('%H:%M:%S')}] main loop runs again\n")
            sys.__stderr__.flush()
            reported = False


threading.Thread(target=_watch, name="playbook-test-kernel-watchdog", daemon=True).start()
