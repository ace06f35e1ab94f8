"""Writes the README's example request bodies from `trips.json` (two trips as JSON features).

    bin/runtime run python -m serving.requests.make_requests

classify.json sends the features as JSON (TF Serving's classify format, to the
`classification` signature, whose one input is named `inputs` as TF Serving's Classify
requires); the predict bodies send the same trips as serialized tf.Examples in
{"b64": ...}, in the row ("instances") and the columnar ("inputs") format.
"""

import base64
import json
import os

from serving.json_tensor import example_input
from serving.tf_json import JsonObject

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    with open(os.path.join(HERE, "trips.json")) as f:
        trips = json.load(f)
    # the tf.Examples TF Serving's classify would build from these JSON features
    examples = example_input(JsonObject([("examples", [JsonObject(list(t.items())) for t in trips])])).example_list
    b64 = [{"b64": base64.b64encode(e.SerializeToString(deterministic=True)).decode()} for e in examples.examples]
    bodies = {
        "classify.json": {"signature_name": "classification", "examples": trips},
        "predict_instances.json": {"instances": b64},
        "predict_inputs.json": {"inputs": {"examples": b64}},
    }
    for name, body in bodies.items():
        with open(os.path.join(HERE, name), "w") as f:
            json.dump(body, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join(HERE, name))


if __name__ == "__main__":
    main()
