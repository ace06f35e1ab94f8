"""Is an exported SavedModel valid for TF Serving's Predict, Classify and Regress APIs?

The checks TF Serving makes when a request arrives, made on the export instead, so a model
that the real server would refuse is refused before it is blessed:

* the MetaGraph tagged exactly {"serve"} exists (what TF Serving loads by default);
* every signature named for Predict has inputs and outputs of dtypes TF Serving's REST API
  can convert (json_tensor.cc AddValueToTensor:290-342, AddSingleValueAndAdvance:888-950);
* a Classify signature: one input, named "inputs", of DT_STRING (serialized tf.Examples);
  one or two outputs among "classes" (DT_STRING) and "scores" (DT_FLOAT), both
  [batch, num_classes] (servables/tensorflow/classifier.cc:176-222, 256-290);
* a Regress signature: one input "inputs" (DT_STRING), exactly one output "outputs"
  (DT_FLOAT, [batch] or [batch, 1]) (servables/tensorflow/regressor.cc:170-206, 238-253).

Which signature serves which API is given by the caller (`apis`); by default
"serving_default" is for Predict, a signature whose method_name is classify/regress for
that API, and the pipeline's "classification" / "regression" signatures for Classify /
Regress (TF2 exports every signature with the predict method_name, so the name is how the
pipeline says what it is for).
"""

from __future__ import annotations

from tensorflow.core.framework import types_pb2

from serving.model import CLASSIFY_METHOD, REGRESS_METHOD, ServingError, check_example_signature, serve_meta_graph

PREDICT, CLASSIFY, REGRESS = "predict", "classify", "regress"
PIPELINE_SIGNATURES = {"serving_default": PREDICT, "classification": CLASSIFY, "regression": REGRESS}
REST_DTYPES = {
    types_pb2.DT_FLOAT,
    types_pb2.DT_DOUBLE,
    types_pb2.DT_INT32,
    types_pb2.DT_INT16,
    types_pb2.DT_INT8,
    types_pb2.DT_UINT8,
    types_pb2.DT_STRING,
    types_pb2.DT_INT64,
    types_pb2.DT_BOOL,
    types_pb2.DT_UINT32,
    types_pb2.DT_UINT64,
}


class SignatureError(ValueError):
    """The export is not what TF Serving accepts; the message names the signature and rule."""


def _dtype(info) -> str:
    return types_pb2.DataType.Name(info.dtype)


def _dims(info) -> list[int] | None:
    shape = info.tensor_shape
    return None if shape.unknown_rank else [d.size for d in shape.dim]


def default_apis(signature_defs) -> dict[str, str]:
    apis = {}
    for name, signature in signature_defs.items():
        if signature.method_name == CLASSIFY_METHOD:
            apis[name] = CLASSIFY
        elif signature.method_name == REGRESS_METHOD:
            apis[name] = REGRESS
        elif name in PIPELINE_SIGNATURES:
            apis[name] = PIPELINE_SIGNATURES[name]
    return apis


def problems(path: str, apis: dict[str, str] | None = None) -> list[str]:
    """Every rule the SavedModel at `path` breaks, one line each (empty: TF Serving accepts it)."""
    try:
        signature_defs = dict(serve_meta_graph(path).signature_def)
    except ServingError as e:
        return [e.message]
    except OSError as e:
        return [f"{path}: not a SavedModel ({e})"]
    apis = default_apis(signature_defs) if apis is None else apis
    found = []
    for name, api in sorted(apis.items()):
        signature = signature_defs.get(name)
        if signature is None:
            found.append(f'signature "{name}" ({api}): not in the export (it has {sorted(signature_defs)})')
            continue
        where = f'signature "{name}" ({api})'
        if api == PREDICT:
            if not signature.inputs or not signature.outputs:
                found.append(f"{where}: needs inputs and outputs")
            for kind, tensors in (("input", signature.inputs), ("output", signature.outputs)):
                for alias, info in sorted(tensors.items()):
                    if info.dtype not in REST_DTYPES:
                        found.append(
                            f"{where}: {kind} {alias} is {_dtype(info)}, which TF Serving's REST API cannot convert"
                        )
            continue
        method = CLASSIFY_METHOD if api == CLASSIFY else REGRESS_METHOD
        try:
            check_example_signature(signature, method)
        except ServingError as e:
            found.append(
                f"{where}: {e.message.splitlines()[0]}"
                + (' (rename the input to "inputs")' if "inputs found" in e.message else "")
            )
            continue
        if signature.inputs["inputs"].dtype != types_pb2.DT_STRING:
            found.append(
                f"{where}: input inputs is {_dtype(signature.inputs['inputs'])}; TF Serving feeds "
                f"serialized tf.Examples (DT_STRING)"
            )
        wanted = (
            {"classes": types_pb2.DT_STRING, "scores": types_pb2.DT_FLOAT}
            if api == CLASSIFY
            else {"outputs": types_pb2.DT_FLOAT}
        )
        for alias, dtype in wanted.items():
            info = signature.outputs.get(alias)
            if info is None:
                continue
            if info.dtype != dtype:
                found.append(
                    f"{where}: output {alias} is {_dtype(info)}, TF Serving needs {types_pb2.DataType.Name(dtype)}"
                )
            dims = _dims(info)
            if dims is None:
                continue
            if api == CLASSIFY and len(dims) != 2:
                found.append(f"{where}: output {alias} has shape {dims}, TF Serving needs [batch_size, num_classes]")
            if api == REGRESS and not (len(dims) == 1 or (len(dims) == 2 and dims[1] in (1, -1))):
                found.append(
                    f"{where}: output {alias} has shape {dims}, TF Serving needs [batch_size] or [batch_size, 1]"
                )
    return found


def check_exported_signatures(path: str, apis: dict[str, str] | None = None) -> None:
    """Raise SignatureError listing what TF Serving would refuse in the export at `path`."""
    found = problems(path, apis)
    if found:
        raise SignatureError(f"{path} is not valid for TF Serving: " + "; ".join(found))
