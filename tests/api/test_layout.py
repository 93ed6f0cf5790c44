"""The shape of the package: no module of fastckpt imports, directly or through others, a module that imports it
back (imports inside functions count: a cycle is a cycle whenever it is taken)."""

import ast

from helpers.paths import ROOT

PACKAGE = ROOT / "python" / "fastckpt"


def _modules():
    """``{module name: (file, its package's name parts)}`` of every module of fastckpt."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            package = parts
        else:
            package = parts[:-1]
        modules[".".join(parts)] = (path, package)
    return modules


def _imports(modules):
    """``{module: modules of fastckpt it imports}``, the package itself (``from . import errors`` names
    ``fastckpt.errors``) left out: it gathers its modules' names and imports them all."""
    graph = {}
    for name, (path, package) in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                for alias in node.names:
                    imported.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names if alias.name in modules)
        graph[name] = {module for module in imported if module in modules and module not in (name, "fastckpt")}
    return graph


def _cycles(graph):
    """The import cycles of ``graph``, each as the list of modules around it."""
    cycles = []

    def visit(module, path):
        for imported in sorted(graph[module]):
            if imported in path:
                cycles.append(path[path.index(imported) :] + [imported])
            else:
                visit(imported, path + [imported])

    for module in sorted(graph):
        visit(module, [module])
    return cycles


def test_no_import_cycles():
    cycles = _cycles(_imports(_modules()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles[:10])


def test_cycles_are_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})[0] == ["a", "b", "c", "a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []
