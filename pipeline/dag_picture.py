"""The DAG as a Mermaid flowchart, drawn from `create_pipeline` itself: `python -m pipeline.dag_picture`.

The README shows this picture; tests/test_docs.py regenerates it and fails when the
README's copy no longer matches the pipeline definition, so the picture cannot drift.
"""

from __future__ import annotations

import sys

# A few words under each node id: what it does here (ids not listed show the id alone).
ROLES = {
    "ImportExampleGen": "TFRecords, hash split",
    "ImportSchemaGen": "curated schema",
    "StatisticsGen": "TFDV statistics",
    "ExampleValidator": "anomalies",
    "ValidationGate": "stops on anomalies",
    "Transform": "tf.Transform",
    "Trainer": "Keras, MirroredStrategy",
    "BaselineModel": "last blessed model",
    "Evaluator": "TFMA, sliced, gated",
    "InfraValidator": "loads in a model server",
    "EdgeExport": "LiteRT float + int8, gated",
    "DriftCheck": "new span vs the previous",
    "WarmStartModel": "last blessed weights",
    "Pusher": "TF Serving directory",
    "SliceReport": "HTML + Markdown",
}


def mermaid(pipeline) -> str:
    ids = [c.id for c in pipeline.components]
    lines = ["flowchart LR"]
    for node_id in ids:
        role = ROLES.get(node_id)
        label = f"{node_id}<br/><small>{role}</small>" if role else node_id
        lines.append(f'    {node_id}["{label}"]')
    for component in pipeline.components:  # one line per node: all that feeds it
        upstream = sorted(component.upstream_nodes, key=lambda c: ids.index(c.id))
        if upstream:
            lines.append(f"    {' & '.join(c.id for c in upstream)} --> {component.id}")
    return "\n".join(lines) + "\n"


def main() -> int:
    from pipeline.config import load_config
    from pipeline.dag import create_pipeline

    cfg = load_config("configs/local.toml")
    sys.stdout.write(mermaid(create_pipeline(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
