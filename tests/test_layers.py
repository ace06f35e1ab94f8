"""The model code is a layer of its own: it imports no orchestration, so a data scientist
can read, test and replace it without the pipeline around it."""

from __future__ import annotations

import ast

from tests.taxi_sample import PROJECT_DIR

FORBIDDEN = (
    "tfx.orchestration",
    "tfx.v1",
    "tfx.dsl",
    "pipeline",
    "components",
    "metrics",
    "serving",
    "reporting",
    "local_runner",
    "kfp_runner",
    "kfp",
)


def imports_of(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_model_code_imports_no_orchestration():
    modules = sorted((PROJECT_DIR / "modeling").glob("*.py"))
    assert len(modules) >= 7
    offending = {
        f"{m.name}: {name}"
        for m in modules
        for name in imports_of(m)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not offending, offending


def test_the_check_would_catch_an_orchestration_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from tfx.orchestration import pipeline\nimport pipeline.config\n")
    assert {"tfx.orchestration", "pipeline.config"} <= imports_of(bad)


def test_no_package_imports_a_runner():
    # pyproject.toml's import-linter contracts keep the packages' floors; it takes packages
    # only, so the runner modules are checked here. portable/ is a runner itself.
    runners = ("local_runner", "kfp_runner")
    packages = ("modeling", "components", "pipeline", "reporting", "serving")
    offending = {
        f"{m.relative_to(PROJECT_DIR)}: {name}"
        for p in packages
        for m in sorted((PROJECT_DIR / p).rglob("*.py"))
        for name in imports_of(m)
        if name.split(".")[0] in runners
    }
    assert not offending, offending
