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
