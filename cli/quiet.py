"""Keep TensorFlow's native start-up log lines out of a command's output.

TensorFlow's C++ side logs through absl before anything can configure it, so notes such as
"oneDNN custom operations are on" or a failed `cuInit` on a CPU machine reach the terminal
whatever TF_CPP_MIN_LOG_LEVEL says. The process's file descriptor 2 is routed through a filter
that drops exactly those lines; Python's own `sys.stderr` (click, tqdm) keeps the real terminal.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)


def filter_native_stderr() -> None:
    """Route fd 2 through a thread that drops TensorFlow's native log lines."""
    terminal = os.dup(2)
    restore = os.dup(terminal)  # kept for the exit: a Celery worker replaces sys.stderr with a proxy
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as source, os.fdopen(terminal, "wb", buffering=0) as sink:
            for line in source:
                if not NATIVE_LOG_LINE.match(line):
                    sink.write(line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def drain() -> None:
        os.dup2(restore, 2)  # closes the pipe's last write end: the pump sees EOF
        thread.join(timeout=1.0)

    atexit.register(drain)
