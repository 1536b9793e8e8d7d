"""The layering holds: ``api/`` and ``worker/`` are siblings on the ``service/`` kernel and never
import each other; the kernel imports neither shell; ``meow_engine`` imports no web, DB or queue code.

Checked twice: statically (every import statement in the source, including ones inside functions)
and at run time (what importing a shell actually loads).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

#: top-level packages that make a module web, database or queue code
SERVICE_STACK = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "celery", "kombu",
                 "billiard", "redis", "api", "worker", "service"}

FORBIDDEN = {
    "api": {"worker"},
    "worker": {"api"},
    "service": {"api", "worker"},
    "meow_engine": SERVICE_STACK,
}


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path`` (relative imports stay in the package)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_import_scanner_sees_nested_imports(tmp_path: Path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef f():\n    from worker.app import app\n    import api.main as m\n")
    assert imported_roots(f) == {"os", "worker", "api"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_layers(package: str):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    bad = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files}
    assert {f: names for f, names in bad.items() if names} == {}


def _loaded(code: str, names: set[str]) -> list[str]:
    """Which of ``names`` a fresh interpreter has loaded after running ``code``."""
    probe = f"import sys; {code}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(names)!r})))"
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return ast.literal_eval(r.stdout.strip())


def test_runtime_imports_respect_the_layers():
    assert _loaded("import api.main", {"worker"}) == []
    assert _loaded("import worker.tasks, worker.runner", {"api"}) == []
    assert _loaded("import meow_engine.pipeline, meow_engine.memo, meow_engine.inverters", SERVICE_STACK) == []
