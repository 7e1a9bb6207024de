"""The package's layering: no module imports another that imports it back (at any depth, function-level
imports included), and loading a trained model for inference does not load the training loop."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "ssync_jax"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: pathlib.Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere in its text (`import a.b`, `from a import b`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            # `from pkg import module` imports the module; `from pkg import name` imports pkg itself.
            found.update(submodules if len(submodules) == len(node.names) else {node.module, *submodules})
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    # A package's __init__ runs on the way to any of its modules: a module's edge to its own package
    # (re-exporting it) is the usual layout, not a circle.
    return {
        name: {other for other in imports_of(path, modules) if not (name + ".").startswith(other + ".")}
        for name, path in paths.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, found by depth-first search (each reported once, from its smallest name)."""
    found = []

    def visit(start: str, node: str, trail: list[str]) -> None:
        for successor in sorted(graph[node]):
            if successor == start:
                found.append([*trail, start])
            elif successor > start and successor not in trail:
                visit(start, successor, [*trail, successor])

    for start in sorted(graph):
        visit(start, start, [start])
    return found


def test_the_import_graph_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_no_module_of_the_package_imports_itself_through_others():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_loading_a_model_for_inference_does_not_import_the_training_loop():
    code = "import sys, ssync_jax.inference; print(sorted(m for m in sys.modules if m.startswith('ssync_jax')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = result.stdout.strip()
    # The params' shapes come from beside the model factory (`models.abstract_params`), not the train state.
    assert "'ssync_jax.train_state'" not in loaded, loaded
    assert "'ssync_jax.train'" not in loaded and "'ssync_jax.evaluate'" not in loaded, loaded
