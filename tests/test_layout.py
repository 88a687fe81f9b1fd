"""The boundary of shared/STYLE.md: everything outside curation/ui imports with gradio unimportable."""
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import importlib, pkgutil, sys
sys.modules["gradio"] = None  # any `import gradio` now raises ImportError
import curation, db
failed = []
for package in (curation, db):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if module.name.startswith("curation.ui") or module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError as exc:
            failed.append(f"{module.name}: {exc}")
print("\\n".join(failed))
"""


def test_domain_and_storage_import_without_gradio():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_ui_reaches_storage_only_through_the_services():
    import ast

    reaching = []
    for path in sorted((REPO / "curation" / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            reaching += [f"{path.name}: {n}" for n in names if n == "db" or n.startswith("db.")]
    assert reaching == []


def service_imports() -> dict[str, set[str]]:
    """Each curation/services module and the service modules it imports (at the top or inside a function)."""
    import ast

    folder = REPO / "curation" / "services"
    names = {path.stem for path in folder.glob("*.py")} - {"__init__"}
    graph = {}
    for name in names:
        found = set()
        for node in ast.walk(ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "curation.services":
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("curation.services."):
                found.add(node.module.split(".")[2])
        graph[name] = found & names - {name}
    return graph


def test_no_two_services_import_each_other_even_through_others():
    graph = service_imports()
    assert "drafting" in graph["task_drafting"]  # the reader sees real imports

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            name, path = stack.pop()
            for used in graph[name]:
                if used == start:
                    return path + [start]
                if used not in seen:
                    seen.add(used)
                    stack.append((used, path + [used]))
        return None

    cycles = {tuple(c) for c in map(cycle_from, graph) if c}
    assert cycles == set(), f"services importing each other: {sorted(cycles)}"
