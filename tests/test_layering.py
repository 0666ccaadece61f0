"""The package's layering (../shared/DESIGN.md, "Layout"): no import cycle in
skxmr/, and no module imports from a layer above its own. Imports inside
functions count too (they hide cycles, they do not remove them)."""

import ast
import pathlib

import skxmr

ROOT = pathlib.Path(skxmr.__file__).parent

# Layers, lowest first: a module may import from its own layer (no cycle) or
# below. A module is in the layer of its longest matching name prefix.
LAYERS = [
    ["skxmr._version", "skxmr._cython", "skxmr.utils", "skxmr._check_build"],
    ["skxmr._progress", "skxmr._label_tree", "skxmr._postprocess",
     "skxmr._xtransformer._text", "skxmr._xtransformer._encoder",
     "skxmr._xtransformer._neighbors", "skxmr._xtransformer._ann",
     "skxmr._xtransformer._embedding_cache", "skxmr._targets", "skxmr._embedding",
     "skxmr.datasets", "skxmr._show_versions", "skxmr._dask"],
    ["skxmr.metrics", "skxmr._linear_solver", "skxmr._beam", "skxmr._tree_building",
     "skxmr._xtransformer._fine_tune", "skxmr._xtransformer._weight_search"],
    ["skxmr._base", "skxmr._xrlinear_training", "skxmr._indexer",
     "skxmr._label_addition", "skxmr._ensemble"],
    ["skxmr._xrlinear"],
    ["skxmr._calibration", "skxmr._xtransformer"],
    ["skxmr._persistence"],
    ["skxmr", "skxmr._cli", "skxmr._demo", "skxmr.__main__",
     "skxmr.estimator_checks"],
]


def _module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path, name, known):
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "skxmr")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "skxmr":
                # "from package import submodule" imports the submodule
                subs = {f"{module}.{a.name}" for a in node.names} & known
                found.update(subs if subs else {module})
    found.discard(name)
    return found


def _graph():
    paths = list(ROOT.rglob("*.py"))
    known = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, _module_name(p), known) for p in paths}


def _layer(name):
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def test_every_module_has_a_layer():
    missing = sorted(name for name in _graph() if _layer(name) is None)
    assert not missing, f"give these modules a layer in LAYERS: {missing}"


def test_no_module_imports_from_a_layer_above():
    upward = sorted(
        f"{name} (layer {_layer(name)}) imports {dep} (layer {_layer(dep)})"
        for name, deps in _graph().items() for dep in deps
        if _layer(dep) is not None and _layer(name) is not None
        and _layer(dep) > _layer(name))
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = _graph()
    # A module imported as a package name ("skxmr.utils") or as a submodule.
    known = set(graph)
    edges = {name: {dep for dep in deps if dep in known} for name, deps in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    # The package's own __init__ re-exports its submodules; a submodule that
    # imports "skxmr" itself would close a cycle through it.
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
