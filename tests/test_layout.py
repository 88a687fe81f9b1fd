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
