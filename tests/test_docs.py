"""The front page stays short, its DAG picture is the pipeline's own, its links resolve, and
the commands the docs quote name real targets, flags and settings."""

from __future__ import annotations

import re

import pytest

from tests.taxi_sample import PROJECT_DIR

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


# --- the commands the docs quote -------------------------------------------------------------
# A quoted command is checked as far as it can run here: its make target exists, the program
# the target runs is executed with --help and must know every flag the docs pass it, and every
# `--set KEY=VALUE` must load through the configuration (paths are not checked: they are the
# reader's). Commands that would train, serve or contact a cluster are not run whole.

SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell|console)?\n(.*?)```", re.S)
# The value of each `make` variable a doc may set, and the program each target runs.
MAKE_RECIPE = re.compile(r"^([a-z][a-z-]*):[^\n]*\n((?:\t[^\n]*\n)+)", re.M)


def quoted_commands() -> list[tuple[str, list[str]]]:
    import shlex

    out = []
    for doc in [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]:
        for block in SHELL_BLOCK.findall(doc.read_text()):
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ")
                if re.match(r"(make|bin/runtime run python|python) ", line):
                    out.append((f"{doc.name}: {line}", shlex.split(line, comments=True)))
    return out


def make_programs() -> dict[str, list[str]]:
    """target -> the python program its recipe runs (["local_runner.py"], ["-m", "serving", ...])."""
    makefile = (PROJECT_DIR / "Makefile").read_text()
    programs = {}
    for target, recipe in MAKE_RECIPE.findall(makefile):
        m = re.search(r"\$\((?:PY|RUNTIME\) run python)\) (-m \S+|\S+\.py)(?: (\w+(?:-\w+)*)(?= ))?", recipe)
        programs[target] = m.group(1).split() + ([m.group(2)] if m and m.group(2) else []) if m else []
    return programs


def program_of(tokens: list[str], programs: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """(the python program, the arguments the docs pass it) of one quoted command."""
    import shlex

    if tokens[0] == "make":
        target = tokens[1]
        assert target in programs, f"make {target}: no such target in the Makefile"
        args = [a for t in tokens[2:] if t.startswith("ARGS=") for a in shlex.split(t[len("ARGS=") :])]
        return programs[target], args
    words = tokens[tokens.index("python") + 1 :]
    if words[0] == "-m":
        return words[:2], words[2:]
    sub = [words[1]] if len(words) > 1 and not words[1].startswith("-") else []
    return [words[0], *sub], words[1 + len(sub) :]


@pytest.mark.slow
def test_every_quoted_command_names_real_targets_flags_and_settings():
    import subprocess
    import sys

    from pipeline.config import load_config, parse_overrides

    commands = quoted_commands()
    assert len(commands) >= 15, "the docs quote fewer commands than expected: is the block pattern stale?"
    programs = make_programs()
    helps: dict[tuple[str, ...], str] = {}
    problems = []
    for where, tokens in commands:
        try:
            program, args = program_of(tokens, programs)
        except AssertionError as e:
            problems.append(f"{where}: {e}")
            continue
        flags = [a.split("=")[0] for a in args if a.startswith("--")]
        if program and flags:
            key = tuple(program)
            if key not in helps:
                proc = subprocess.run(
                    [sys.executable, *program, "--help"], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=300
                )
                assert proc.returncode == 0, f"{' '.join(program)} --help: {proc.stderr[-500:]}"
                helps[key] = proc.stdout
            problems += [
                f"{where}: {' '.join(program)} has no {flag}"
                for flag in flags
                if not re.search(rf"(^|\s|\[){re.escape(flag)}\b", helps[key])
            ]
        sets = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--set"]
        sets = [s for s in sets if not s.startswith("key=")]  # the docs' own placeholder
        try:
            load_config(
                PROJECT_DIR / "configs" / "local.toml",
                overrides=parse_overrides(sets),
                base_dir=PROJECT_DIR,
                check_files=False,
            )
        except Exception as e:  # noqa: BLE001 - the message is the finding
            problems.append(f"{where}: {e}")
    assert not problems, "\n".join(problems)
