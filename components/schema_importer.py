"""ImportSchemaGen that notices when the schema file's content changes.

TFX caches ImportSchemaGen on its `schema_file` path alone, so editing the curated schema
in place would silently reuse the old one. This variant adds the file's content hash
as an execution property; the executor is TFX's own and ignores it.
"""

from __future__ import annotations

import hashlib

from tfx import types
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.types.standard_component_specs import SCHEMA_FILE_KEY, SCHEMA_KEY


class FingerprintedImportSchemaGenSpec(ComponentSpec):
    PARAMETERS = {
        SCHEMA_FILE_KEY: ExecutionParameter(type=str),
        "schema_fingerprint": ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema)}


def file_fingerprint(path: str) -> str:
    if "://" in path:
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    return hashlib.sha256(data).hexdigest()[:16]


class FingerprintedImportSchemaGen(ImportSchemaGen):
    SPEC_CLASS = FingerprintedImportSchemaGenSpec

    def __init__(self, schema_file: str, fingerprint_of: str | None = None):
        """`fingerprint_of`: a local copy of `schema_file`, when that is where tasks read it
        (e.g. inside the pipeline image) rather than where the pipeline is compiled."""
        spec = FingerprintedImportSchemaGenSpec(
            schema_file=schema_file,
            schema_fingerprint=file_fingerprint(fingerprint_of or schema_file),
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        super(ImportSchemaGen, self).__init__(spec=spec)
