"""The front page stays short, its DAG picture is the pipeline's own, and its links resolve."""

from __future__ import annotations

import re

from conftest import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text()


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 150
    assert "make run" in README and "make test" in README


def test_readme_dag_is_drawn_from_the_pipeline_definition():
    from pipeline.config import load_config
    from pipeline.dag import create_pipeline
    from pipeline.dag_picture import mermaid

    block = re.search(r"```mermaid\n(.*?)```", README, re.S)
    assert block, "no mermaid block in README.md"
    expected = mermaid(create_pipeline(load_config(PROJECT_DIR / "configs" / "local.toml", base_dir=PROJECT_DIR)))
    assert block.group(1) == expected, "README's DAG is stale: python -m pipeline.dag_picture"


def test_every_local_link_in_the_docs_resolves():
    docs = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]
    broken = []
    for doc in docs:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target:
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.name}: {target}")
    assert not broken, broken
