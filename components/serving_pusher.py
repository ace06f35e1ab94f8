"""Pusher executor for a filesystem serving directory that TensorFlow Serving watches.

The stock executor copies files straight into `<base>/<unix time>/`: a server polling the
directory can see a half-copied version, two pushes in one second collide, an unchanged
model is pushed again on every re-evaluation, and old versions pile up. This executor keeps
TFX's blessing check and metadata, and changes only how files land:

- the version is copied into a hidden temporary directory and renamed into place, so a
  version directory is complete or absent (TF Serving ignores names that are not integers);
- versions strictly increase: max(now, newest + 1);
- a model identical to the newest version (same SavedModel fingerprint) is not copied again;
- only the newest `keep_versions` versions are kept;
- an infra-blessed model is pushed from the InfraBlessing's copy, which carries the
  warm-up requests InfraValidator sent (`assets.extra/tf_serving_warmup_requests`), so TF
  Serving warms the version up before serving it. (The stock Pusher does that only when it
  is given no `model` input.)

The directory rules and the copy itself live in `serving.layout`, shared with rollback.
"""

from __future__ import annotations

import logging
import os

from tfx.components.pusher import executor as tfx_pusher
from tfx.components.pusher.component import Pusher as TfxPusher
from tfx.dsl.components.base import base_component
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, channel, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils, path_utils, proto_utils

from components.edge_export import PUBLISH_DIR, EdgeModel
from serving.layout import publish

LOG = logging.getLogger(__name__)
KEEP_VERSIONS_KEY = "keep_versions"
EDGE_MODEL_KEY = "edge_model"
EDGE_DESTINATION = os.path.join("assets.extra", PUBLISH_DIR)


class PusherSpec(standard_component_specs.PusherSpec):
    """TFX's Pusher inputs, and the edge models published with the version when given."""

    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EDGE_MODEL_KEY: component_spec.ChannelParameter(type=EdgeModel, optional=True),
    }


class Pusher(TfxPusher):
    """TFX's Pusher with an optional `edge_model` input (components/edge_export.py)."""

    SPEC_CLASS = PusherSpec

    def __init__(
        self,
        *,
        model,
        model_blessing,
        infra_blessing,
        push_destination,
        custom_config,
        custom_executor_spec,
        edge_model=None,
    ):
        spec = PusherSpec(
            model=model,
            model_blessing=model_blessing,
            infra_blessing=infra_blessing,
            push_destination=push_destination,
            custom_config=json_utils.dumps(custom_config),
            pushed_model=channel.Channel(type=standard_artifacts.PushedModel),
            **({EDGE_MODEL_KEY: edge_model} if edge_model is not None else {}),
        )
        base_component.BaseComponent.__init__(self, spec=spec, custom_executor_spec=custom_executor_spec)


class Executor(tfx_pusher.Executor):
    def GetModelPath(self, input_dict) -> str:
        """The InfraBlessing's warm-up copy of the model when there is one, else the model."""
        infra = input_dict.get(standard_component_specs.INFRA_BLESSING_KEY)
        if infra:
            blessing = artifact_utils.get_single_instance(infra)
            if blessing.get_int_custom_property("has_model"):
                path = path_utils.stamped_model_path(blessing.uri)
                LOG.info("pushing the infra-validated copy with warm-up requests: %s", path)
                return path
        return super().GetModelPath(input_dict)

    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        extra = {}
        for edge in input_dict.get(EDGE_MODEL_KEY) or []:
            published = os.path.join(edge.uri, PUBLISH_DIR)
            if fileio.isdir(published):
                extra[EDGE_DESTINATION] = published
                LOG.info(
                    "publishing the edge models (%s) in %s",
                    edge.get_string_custom_property("published"),
                    EDGE_DESTINATION,
                )
        if "://" in base:  # object stores have no atomic rename: TFX's own copy order, then the edge models
            super().Do(input_dict, output_dict, exec_properties)
            if model_push.get_int_custom_property("pushed") == 1:
                for inside, source in extra.items():
                    io_utils.copy_dir(
                        source, os.path.join(model_push.get_string_custom_property("pushed_destination"), inside)
                    )
            return
        custom = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {}
        model_path = self.GetModelPath(input_dict)
        target, _ = publish(model_path, base, keep=int(custom.get(KEEP_VERSIONS_KEY, 5)), extra=extra)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=target, pushed_version=os.path.basename(target))
        LOG.info("model pushed to %s", target)
