"""Assemble the browser page into a static directory: `python web/build.py OUT [--model DIR]`.

Only what the page loads at run time is copied from web/node_modules (installed by
`npm ci` from the pinned package-lock.json; `make web` does both): LiteRT.js's ES module,
its one dependency, and the two WebAssembly builds it chooses between (relaxed SIMD or
not). Nothing is fetched from a CDN. `--model` is a published assets.extra/litert/
directory, copied to OUT/model/.

Stdlib only: it runs with or without the project's runtime.
"""

import argparse
import os
import shutil
import sys

WEB = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(WEB, "node_modules", "@litertjs")
FILES = {
    "index.html": os.path.join(WEB, "index.html"),
    "app.js": os.path.join(WEB, "app.js"),
    "edge_features.js": os.path.join(WEB, "edge_features.js"),
    "vendor/litertjs-core/index.js": os.path.join(MODULES, "core", "dist", "index.js"),
    "vendor/wasm-utils/index.js": os.path.join(MODULES, "wasm-utils", "dist", "index.js"),
}
for variant in ("litert_wasm_internal", "litert_wasm_compat_internal"):
    for ext in ("js", "wasm"):
        FILES[f"wasm/{variant}.{ext}"] = os.path.join(MODULES, "core", "wasm", f"{variant}.{ext}")


def build(out: str, model: str | None = None) -> None:
    missing = [src for src in FILES.values() if not os.path.exists(src)]
    if missing:
        raise FileNotFoundError(f"{missing[0]} is missing: run `npm ci` in {WEB} (or `make web`)")
    if model and not os.path.exists(os.path.join(model, "edge_features.json")):
        raise FileNotFoundError(f"--model {model}: no edge_features.json there (a published assets.extra/litert/)")
    staging = out.rstrip("/") + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    for rel, src in FILES.items():
        os.makedirs(os.path.dirname(os.path.join(staging, rel)), exist_ok=True)
        shutil.copy(src, os.path.join(staging, rel))
    if model:
        shutil.copytree(model, os.path.join(staging, "model"))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(staging, out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--model", help="a published assets.extra/litert/ directory")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.model)
    except FileNotFoundError as e:
        print(f"web build error: {e}", file=sys.stderr)
        return 2
    print(f"page: {args.out}/index.html (serve the directory over http)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
