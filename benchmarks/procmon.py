"""Peak memory of a process tree, sampled from /proc while a command runs.

Why the whole tree: Beam's multi-processing mode and TFX's component launches run work
in child processes, so the command's own RSS says little. Why PSS as well as RSS: the
workers share the interpreter's and TensorFlow's pages, and summing their RSS counts
those pages once per process; PSS splits shared pages between their sharers, so the
tree's PSS sum is what the tree really costs the machine. The peak is of the sums.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil

LOG = logging.getLogger("benchmarks.procmon")
_SHOWN = re.compile(r"^\[\s*\d+/\d+\]|^Beam:|finished in|error|Error|BLESSED|blessed")


@dataclass
class Usage:
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    peak_processes: int = 0
    samples: int = 0
    returncode: int | None = None
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (seconds, PSS MB)


def tree_memory(root: psutil.Process) -> tuple[float, float, int]:
    """(RSS MB, PSS MB, processes) of `root` and all its descendants right now."""
    try:
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0.0, 0.0, 0
    rss = pss = 0
    alive = 0
    for p in procs:
        try:
            info = p.memory_full_info()  # reads /proc/PID/smaps_rollup
        except psutil.Error:  # exited between listing and reading
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        alive += 1
    return rss / 2**20, pss / 2**20, alive


def run_measured(
    cmd: list[str], *, log_path: str, interval: float = 0.25, cwd: str | None = None, env: dict | None = None
) -> tuple[Usage, str]:
    """Run `cmd` (stdout+stderr to `log_path`), sampling its tree's memory every `interval` s.

    Returns the usage and the command's stdout text.
    """
    usage = Usage()
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, cwd=cwd, env=env, text=True)
        stop = threading.Event()

        def sample() -> None:
            root = psutil.Process(proc.pid)
            while not stop.is_set():
                rss, pss, n = tree_memory(root)
                usage.samples += 1
                usage.peak_rss_mb = max(usage.peak_rss_mb, rss)
                usage.peak_pss_mb = max(usage.peak_pss_mb, pss)
                usage.peak_processes = max(usage.peak_processes, n)
                usage.timeline.append((round(time.monotonic() - start, 2), round(pss, 1)))
                stop.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out_lines = []
        for line in proc.stdout:  # echo as it comes, so a long run shows progress
            out_lines.append(line)
            log.write(line)
            log.flush()
            if _SHOWN.search(line):  # the rest (Keras bars, setup.py chatter) is in the log
                LOG.info("    %s", line.rstrip())
        usage.returncode = proc.wait()
        usage.wall_s = time.monotonic() - start
        stop.set()
        sampler.join()
    return usage, "".join(out_lines)
