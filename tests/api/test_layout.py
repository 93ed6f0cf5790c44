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
    ``fastckpt.errors``) left out: it gathers its modules' names and imports them all. Importing a module imports
    the packages holding it first (``fastckpt.graphs.meta_graph`` runs ``fastckpt/graphs/__init__.py``), but
    not the packages holding the importer, which are being imported already."""
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
        imported = {parent for module in imported for parent in _with_packages(module)}
        own_packages = set(_with_packages(name))
        graph[name] = {module for module in imported if module in modules and module not in own_packages}
    return graph


def _with_packages(module):
    """``module`` and the packages holding it, ``fastckpt`` itself left out."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(2, len(parts) + 1)]


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


def test_relative_imports_name_modules_that_exist():
    """A relative import inside a function runs only when called: one left behind by a move is found here."""
    modules = _modules()
    missing = []
    for name, (path, package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                if base not in modules and not (PACKAGE.parent / base.replace(".", "/")).with_suffix(".pyi").exists():
                    missing.append(f"{name}: from {'.' * node.level}{node.module or ''}")
    assert not missing, missing


# Beyond this many lines a module is to say at its top why it is one module (``over 500 lines because ...``).
LONG_MODULE = 500


def test_long_modules_say_why():
    unexplained = []
    for name, (path, _) in _modules().items():
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > LONG_MODULE and "over 500 lines because" not in " ".join(docstring.split()):
            unexplained.append(f"{name} ({text.count(chr(10))} lines)")
    assert not unexplained, f"modules over {LONG_MODULE} lines that do not say why: {unexplained}"


def test_no_module_imports_another_modules_private_names():
    """A name with a leading underscore is its module's own: another module that needs it needs it public."""
    reaching = []
    for name, (path, _) in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                reaching += [
                    f"{name}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                    and not alias.name.startswith("__")
                    and alias.name not in ("_fastckpt", "_paths", "_optional")
                ]
    assert not reaching, reaching


def test_the_binding_imports_no_fastckpt_module():
    """The extension converts; it asks Python's fastckpt for no rule (numpy dtypes come from the core's table).
    Its one reference to the package is the exception classes of fastckpt.errors, which it raises."""
    binding = ROOT / "rust" / "fastckpt-python" / "src"
    calls = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(binding.glob("*.rs"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ".import(" in line and "ml_dtypes" not in line
    ]
    assert not calls, calls
    assert all(len(path.read_text(encoding="utf-8").splitlines()) < 500 for path in binding.glob("*.rs"))
