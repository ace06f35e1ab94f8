"""The serving directory's layout, by TensorFlow Serving's rules, and how versions land in it.

TF Serving watches `<base_path>/<model_name>/` and treats every sub-directory whose name is
an integer as a version; anything else (our hidden `.staging-*` copies, `.retracted`) is
ignored, and with the default version policy the highest version is served. Everything
here relies only on those rules, so what the pipeline writes, what our loopback server
loads and what a real TF Serving loads are the same thing.

Stdlib only: the Pusher, the rollback CLI and the servers share it, and its tests need no
TensorFlow.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time

LOG = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"
RETRACTED_FILE = ".retracted"  # versions a rollback withdrew; never chosen again by rollback
# TF Serving parses a version directory name with strtoll: digits only (no sign, no dot).
_VERSION_RE = re.compile(r"^[0-9]+$")


def is_version_name(name: str) -> bool:
    return bool(_VERSION_RE.match(name))


def versions(base: str) -> list[int]:
    """Integer version directories under `base`, ascending; the last one is what TF Serving serves."""
    if not os.path.isdir(base):
        return []
    return sorted(int(d) for d in os.listdir(base) if is_version_name(d) and os.path.isdir(os.path.join(base, d)))


def latest_version(base: str) -> int | None:
    found = versions(base)
    return found[-1] if found else None


def fingerprint(model_dir: str) -> bytes | None:
    """The SavedModel's fingerprint.pb (written by TF >= 2.12): identifies a model's content."""
    path = os.path.join(model_dir, "fingerprint.pb")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    return None


def _copy_into_place(model_dir: str, base: str, version: int, extra: dict[str, str] | None = None) -> str:
    """Copy to a hidden staging directory, then rename: the version appears whole or not at all.

    `extra` maps a path inside the version to a directory copied there too, e.g. the edge
    models into assets.extra/litert: TF Serving reads only tf_serving_warmup_requests from
    assets.extra (tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc) and
    nothing else there, so the version stays a valid SavedModel to it.
    """
    staging = os.path.join(base, f"{STAGING_PREFIX}{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    target = os.path.join(base, str(version))
    try:
        shutil.copytree(model_dir, staging)
        for inside, source in (extra or {}).items():
            shutil.copytree(source, os.path.join(staging, inside), dirs_exist_ok=True)
        os.rename(staging, target)  # atomic on one filesystem
    except Exception:  # e.g. a full disk: no half copy left to take up its space (a killed
        # process leaves one; the next push's _prune removes it)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _next_version(base: str) -> int:
    """Unix seconds like TFX's Pusher, but never <= the newest: two pushes in one second still increase."""
    newest = latest_version(base)
    return max(int(time.time()), newest + 1 if newest is not None else 0)


def _prune(base: str, keep: int) -> None:
    for old in versions(base)[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(base, str(old)), ignore_errors=True)
    for name in os.listdir(base):  # leftovers of pushes that crashed mid-copy
        if name.startswith(STAGING_PREFIX) and not name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def publish(model_dir: str, base: str, keep: int = 5, extra: dict[str, str] | None = None) -> tuple[str, bool]:
    """Publish `model_dir` as a new version under `base`. Returns (version dir, copied).

    A model identical to the newest version (same fingerprint) is not copied again.
    """
    os.makedirs(base, exist_ok=True)
    newest = latest_version(base)
    if newest is not None:
        newest_dir = os.path.join(base, str(newest))
        fp = fingerprint(model_dir)
        if fp is not None and fp == fingerprint(newest_dir):
            LOG.info("model already published as %s; not copying again", newest_dir)
            return newest_dir, False
    target = _copy_into_place(model_dir, base, _next_version(base), extra)
    _prune(base, keep)
    return target, True


def retracted(base: str) -> set[int]:
    path = os.path.join(base, RETRACTED_FILE)
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {int(line) for line in f if line.strip().isdigit()}


class RollbackError(RuntimeError):
    """Nothing to roll back to (or the requested version does not exist)."""


def rollback(base: str, to_version: int | None = None, keep: int = 5) -> tuple[int, int, int]:
    """Re-publish an earlier version as a new highest version. Returns (withdrawn, source, new).

    TF Serving serves the highest version, so going back means publishing the earlier model
    again above the current one (its files copied, atomically), not deleting anything: the
    withdrawn version stays on disk for inspection and is listed in `.retracted`, so a
    second rollback goes one further back instead of returning to it. Without `to_version`
    the target is the newest version below the current one that holds a different model
    and was not withdrawn before.
    """
    found = versions(base)
    if not found:
        raise RollbackError(f"no versions under {base}")
    current = found[-1]
    current_fp = fingerprint(os.path.join(base, str(current)))
    withdrawn = retracted(base) | {current}
    if to_version is not None:
        if to_version not in found:
            raise RollbackError(f"version {to_version} does not exist under {base} (have {found})")
        source = to_version
    else:
        candidates = [
            v
            for v in found[:-1]
            if v not in withdrawn and (current_fp is None or fingerprint(os.path.join(base, str(v))) != current_fp)
        ]
        if not candidates:
            earlier = sorted(retracted(base) & set(found))
            raise RollbackError(
                f"no earlier version to roll back to under {base}: versions {found}"
                + (f", of which {earlier} were withdrawn by earlier rollbacks" if earlier else "")
            )
        source = candidates[-1]
    with open(os.path.join(base, RETRACTED_FILE), "a") as f:
        f.write(f"{current}\n")
    # Copied before pruning, so the source cannot be pruned away under the copy.
    target = _copy_into_place(os.path.join(base, str(source)), base, _next_version(base))
    _prune(base, max(keep, 2))
    LOG.info("rolled back: version %d withdrawn, version %d re-published as %s", current, source, target)
    return current, source, int(os.path.basename(target))
