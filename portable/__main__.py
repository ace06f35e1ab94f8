"""Run the DAG locally through Beam's PortableRunner on a local job service and worker pool:

    python -m portable [local_runner.py arguments, e.g. --config configs/local.toml --set train_steps=200]

The project is staged to the workers as a wheel (--extra_package), as it would be for a
cluster whose workers run another image; see docs/scale-out.md.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile

from portable.cluster import ClusterError, LocalCluster, build_wheel


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import local_runner

    with tempfile.TemporaryDirectory(prefix="beam-cluster-") as workdir:
        try:
            wheel = build_wheel(f"{workdir}/dist")
            with LocalCluster(f"{workdir}/cluster") as cluster:
                sets = [f"{k}={v}" for k, v in cluster.endpoints().items()]
                sets += ["beam_runner=portable", f"beam_runner_args={json.dumps(['--extra_package=' + wheel])}"]
                return local_runner.main(argv + [a for s in sets for a in ("--set", s)])
        except ClusterError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
