"""Execute the notebooks top to bottom (nbclient) and write executed copies to OUT_DIR.

`make notebooks` runs it on the latest local run; the tests run it on theirs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(out_dir: Path, timeout: int = 600) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(HERE.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        ).execute()
        target = out_dir / path.name
        nbformat.write(nb, target)
        written.append(target)
    return written


if __name__ == "__main__":
    for p in execute(Path(sys.argv[1] if len(sys.argv) > 1 else "build/notebooks")):
        print(p)
