"""Concise progress for a local run: one line per component, full logs to a file.

TFX, Beam and TensorFlow log thousands of lines per run. The user sees a line when a
component starts and one when it ends (with seconds, or "cached"); everything goes to
the log file for when something needs a closer look.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import warnings

_RUNNING = re.compile(r"^Component (\S+) is running\.$")
_FINISHED = re.compile(r"^Component (\S+) is finished\.$")
_CACHED = re.compile(r"^A cached execution \d+ is used\.$")

LOG = logging.getLogger("pipeline")


class ComponentProgress(logging.Handler):
    """Turns TFX's 'Component X is running/finished' log records into progress lines.

    Several components may run at once (pipeline/concurrent_runner.py); a component's
    records come from the thread that launched it, so "a cached execution is used" is the
    component's that was started on the same thread. logging.Handler.handle holds the
    handler's lock around emit, so records from those threads are taken one at a time.
    """

    def __init__(self, node_ids: list[str], stream=None):
        super().__init__(level=logging.INFO)
        self.node_ids = node_ids
        self.stream = stream or sys.stdout
        self.running: dict[str, tuple[float, int]] = {}  # node id -> (start, thread)
        self.cached: set[str] = set()
        # On a terminal the "running" line is overwritten by the result; in a log, only
        # results are written.
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

    def _prefix(self, node_id: str) -> str:
        index = self.node_ids.index(node_id) + 1 if node_id in self.node_ids else 0
        return f"[{index:>2}/{len(self.node_ids)}] {node_id:<32}"

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if m := _RUNNING.match(message):
            node_id = m.group(1)
            self.running[node_id] = (time.monotonic(), record.thread)
            self.cached.discard(node_id)
            if self.interactive:
                self.stream.write(f"{self._prefix(node_id)} running\r")
                self.stream.flush()
        elif _CACHED.match(message):
            for node_id, (_, thread) in self.running.items():
                if thread == record.thread:
                    self.cached.add(node_id)
        elif (m := _FINISHED.match(message)) and m.group(1) in self.running:
            node_id = m.group(1)
            seconds = time.monotonic() - self.running.pop(node_id)[0]
            state = "cached" if node_id in self.cached else "done"
            self._write(f"{self._prefix(node_id)} {state:<7}{seconds:7.1f} s")

    def failed(self) -> str | None:
        """The components that were running when the run stopped (the runner lets the
        others finish, so these are the ones that failed), if any."""
        now = time.monotonic()
        for node_id, (started, _) in sorted(self.running.items(), key=lambda item: item[1][0]):
            self._write(f"{self._prefix(node_id)} FAILED {now - started:7.1f} s")
        return ", ".join(sorted(self.running, key=lambda n: self.running[n][0])) or None

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class LogFile(logging.FileHandler):
    """A log file that, when it stops taking writes (a full disk), keeps the first error
    for the runner to report in one line, instead of printing a traceback per record."""

    error: OSError | None = None  # the first one, naming the log file

    def _keep(self, e: OSError) -> None:
        if self.error is None:
            self.error = OSError(e.errno, e.strerror, self.baseFilename)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            self._keep(exc)
        else:
            super().handleError(record)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as e:
            self._keep(e)

    def close(self) -> None:
        try:
            super().close()
        except OSError as e:
            self._keep(e)


def configure_logging(log_file: str, verbose: bool = False) -> LogFile:
    """Everything to `log_file`; on the console only our own lines (and all if verbose)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = LogFile(log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    if not verbose:
        console.addFilter(lambda r: r.name.split(".")[0] == "pipeline")
    root.addHandler(console)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    try:  # absl would otherwise also print to stderr
        from absl import logging as absl_logging

        absl_logging.use_python_logging(quiet=True)
        absl_logging.set_verbosity(absl_logging.INFO)
        logging.getLogger("absl").propagate = True
        for handler in list(logging.getLogger("absl").handlers):
            logging.getLogger("absl").removeHandler(handler)
    except ImportError:
        pass
    return file_handler
