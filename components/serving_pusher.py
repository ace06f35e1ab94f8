"""Pusher executor for a filesystem serving directory that TensorFlow Serving watches.

The stock executor copies files straight into `<base>/<unix time>/`: a server polling the
directory can see a half-copied version, two pushes in one second collide, an unchanged
model is pushed again on every re-evaluation, and old versions pile up. This executor keeps
TFX's blessing check and metadata, and changes only how files land:

- the version is copied into a hidden temporary directory and renamed into place, so a
  version directory is complete or absent (TF Serving ignores names that are not integers);
- versions strictly increase: max(now, newest + 1);
- a model identical to the newest version (same SavedModel fingerprint) is not copied again;
- only the newest `keep_versions` versions are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from tfx.components.pusher import executor as tfx_pusher
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils
from tfx.proto import pusher_pb2

LOG = logging.getLogger(__name__)
KEEP_VERSIONS_KEY = "keep_versions"


def versions(base: str) -> list[int]:
    if not os.path.isdir(base):
        return []
    return sorted(int(d) for d in os.listdir(base) if d.isdigit())


def _fingerprint(model_dir: str) -> bytes | None:
    path = os.path.join(model_dir, "fingerprint.pb")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    return None


def publish(model_dir: str, base: str, keep: int = 5) -> tuple[str, bool]:
    """Publish `model_dir` as a new version under `base`. Returns (version dir, copied)."""
    os.makedirs(base, exist_ok=True)
    existing = versions(base)
    if existing:
        newest = os.path.join(base, str(existing[-1]))
        fp = _fingerprint(model_dir)
        if fp is not None and fp == _fingerprint(newest):
            LOG.info("model already published as %s; not copying again", newest)
            return newest, False
    version = max(int(time.time()), existing[-1] + 1 if existing else 0)
    staging = os.path.join(base, f".staging-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    target = os.path.join(base, str(version))
    os.rename(staging, target)  # atomic: the version appears whole
    for old in versions(base)[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(base, str(old)), ignore_errors=True)
    for name in os.listdir(base):  # leftovers of pushes that crashed mid-copy
        if name.startswith(".staging-") and not name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return target, True


class Executor(tfx_pusher.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        if "://" in base:  # object stores have no atomic rename: TFX's own copy order
            return super().Do(input_dict, output_dict, exec_properties)
        custom = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {}
        model_path = self.GetModelPath(input_dict)
        target, _ = publish(model_path, base, keep=int(custom.get(KEEP_VERSIONS_KEY, 5)))
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=target, pushed_version=os.path.basename(target))
        LOG.info("model pushed to %s", target)
