"""The package's layers: data flows one way (DESIGN.md), so the import graph of kakashi/ has no
circle and the layers named below do not lean on each other. Imports inside functions count."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kakashi"


def import_graph() -> dict[str, set[str]]:
    """{module: kakashi modules it imports}, module names dotted (kakashi.models.mdn)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {c for c in [target] + [f"{target}.{a.name}" for a in node.names] if c in modules}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
        graph[name] = found - {name}
    return graph


GRAPH = import_graph()


def reaches(start: str, graph: dict[str, set[str]] = GRAPH) -> set[str]:
    """Every module `start` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for m in graph.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def test_no_import_circle():
    # a package's __init__ importing its own submodules (to register them) is not a circle
    graph = {m: {t for t in ts if not (m != "kakashi" and t.startswith(m + "."))} for m, ts in GRAPH.items()}
    circles = sorted(m for m in graph if m in reaches(m, graph))
    assert circles == [], f"modules on an import circle: {circles}"


@pytest.mark.parametrize("module,must_not_import", [
    ("kakashi.train", "kakashi.analysis"),
    ("kakashi.train", "kakashi.selection"),
    ("kakashi.train", "kakashi.scoring"),
    ("kakashi.train", "kakashi.synth"),
    ("kakashi.audio", "kakashi.clips"),
    ("kakashi.loaders", "kakashi.pipeline.pose"),
    ("kakashi.generate", "kakashi.train"),
])
def test_layer_does_not_lean_on(module, must_not_import):
    assert must_not_import not in GRAPH[module], f"{module} imports {must_not_import}"


def test_metrics_and_models_do_not_import_each_other():
    metrics = [m for m in GRAPH if m.startswith("kakashi.metrics")]
    models = [m for m in GRAPH if m.startswith("kakashi.models")]
    assert not [(a, b) for a in metrics for b in GRAPH[a] if b in models]
    assert not [(a, b) for a in models for b in GRAPH[a] if b in metrics]


def test_the_graph_is_read():  # the checks above would pass on an empty graph
    assert {"kakashi.dataset", "kakashi.clips"} <= GRAPH["kakashi.experiment"] | reaches("kakashi.experiment")
    assert "kakashi.models.step" in GRAPH["kakashi.models.mdn"]
