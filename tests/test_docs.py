"""The docs point at things that exist: links, anchors, modules, files; and the README stays short.

Cheap: reads the Markdown files only, imports nothing. That each command's flags exist is checked
by hand with `--helpfull` when a doc changes (that needs every module imported, JAX included).
"""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = (
    "README.md",
    "docs/TRAINING.md",
    "docs/DATA.md",
    "docs/EVALUATION.md",
    "docs/RESULTS.md",
    "launch/README.md",
    "benchmarks/README.md",
    "studies/README.md",
)
# `python -m X` that are not this repository's modules.
OTHER_MODULES = {"pytest", "venv", "pip"}
# Paths in the authors' repository (wjun0830/SSync), not this one.
THEIR_PATHS = {"configs/SSync/movi_c.yaml"}


def _read(path: str) -> str:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: str) -> set[str]:
    text = re.sub(r"```.*?```", "", _read(path), flags=re.DOTALL)  # `# comments` in code are no headings
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, re.MULTILINE)}


@pytest.mark.parametrize("doc", DOCS)
def test_links_resolve(doc):
    text = _read(doc)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        assert os.path.exists(os.path.join(REPO, resolved)), f"{doc}: link to missing {target}"
        if anchor and resolved.endswith(".md"):
            assert anchor in _anchors(resolved), f"{doc}: no heading for #{anchor} in {resolved}"


@pytest.mark.parametrize("doc", DOCS)
def test_modules_and_files_exist(doc):
    text = _read(doc)
    for module in set(re.findall(r"python3? -m ([\w.]+)", text)) - OTHER_MODULES:
        base = os.path.join(REPO, *module.split("."))
        assert os.path.exists(base + ".py") or os.path.exists(os.path.join(base, "__main__.py")), (
            f"{doc}: python -m {module} names no module of this repository"
        )
    paths = re.findall(r"(?<![\w./-])((?:configs|studies|ssync_jax|benchmarks|launch|tests|docs)/[\w./-]*(?:\{[\w,/]+\}[\w.]*)?)", text)
    for path in set(paths):
        path = path.split(":")[0].rstrip(".")
        if path in THEIR_PATHS:
            continue
        stem, brace, rest = path.partition("{")  # `docs/x.{csv,png}`: each of them
        names, _, tail = rest.partition("}")
        for one in [stem + name + tail for name in names.split(",")] if brace else [path]:
            assert os.path.exists(os.path.join(REPO, one)), f"{doc}: names missing {one}"


@pytest.mark.parametrize("doc", DOCS)
def test_no_one_machines_paths(doc):
    # Commands name placeholders a reader fills in (AUTHORS_VENV, OUT, ...), not this machine's paths.
    assert not re.findall(r"(?<![\w.~])/(?:work|tmp|home)/", _read(doc)), doc


def test_readme_is_short():
    assert len(_read("README.md").splitlines()) <= 250


@pytest.mark.parametrize("doc", DOCS)
def test_accelerator_jax_is_the_pinned_version(doc):
    # `pip install "jax[cuda12]==V"` must match requirements.txt's jax, or pip replaces the pinned jax.
    (pinned,) = re.findall(r"^jax==([\d.]+)$", _read("requirements.txt"), re.MULTILINE)
    for version in re.findall(r"jax\[\w+\]==([\d.]+)", _read(doc)):
        assert version == pinned, f"{doc}: jax {version}, requirements.txt pins {pinned}"
