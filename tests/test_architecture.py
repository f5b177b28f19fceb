"""Data flows one way: `renderer` and `export` never import `jobs`; `export` never imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_levels(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_renderer_and_export_never_import_jobs() -> None:
    offenders = [
        f"{path} imports jobs"
        for package in ("renderer", "export")
        for path, names in _imported_top_levels(package).items()
        if "jobs" in names
    ]
    assert offenders == []


def test_export_never_imports_torch() -> None:
    offenders = [f"{path} imports {name}" for path, names in _imported_top_levels("export").items()
                 for name in names & {"torch", "sqlalchemy", "renderer"}]
    assert offenders == []


def test_the_product_holds_no_test_scaffolding() -> None:
    """Fakes and fault hooks live under tests/ and are injected (jobs.services.Services): the product
    imports nothing from tests and reads no RENDER_TEST_* variable."""
    offenders = [f"{path} imports tests" for package in ("renderer", "jobs", "export")
                 for path, names in _imported_top_levels(package).items() if "tests" in names]
    offenders += [str(path.relative_to(ROOT)) + " reads RENDER_TEST_*" for package in ("renderer", "jobs", "export")
                  for path in sorted((ROOT / package).rglob("*.py")) if "RENDER_TEST_" in path.read_text("utf-8")]
    assert offenders == []


def test_only_the_store_speaks_sql() -> None:
    """Every query lives in jobs/store/ (the tables in jobs/db.py, their migrations in jobs/migrations/):
    nothing else imports sqlalchemy."""
    allowed = ("jobs/db.py", "jobs/store/", "jobs/migrations/")
    offenders = [path for package in ("renderer", "jobs", "export")
                 for path, names in _imported_top_levels(package).items()
                 if "sqlalchemy" in names and not path.startswith(allowed)]
    assert offenders == []


def test_the_walker_sees_imports() -> None:
    # Guard against a walker that silently finds nothing.
    jobs_imports = set().union(*_imported_top_levels("jobs").values())
    assert {"renderer", "export", "click"} <= jobs_imports


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``), lazy imports included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_engine_never_imports_its_backends() -> None:
    """Backends implement the engine's protocol (renderer.engine.backend); the engine depends on no backend."""
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((ROOT / "renderer" / "engine").rglob("*.py"))
                 for name in sorted(_imported_modules(path)) if name.startswith("renderer.backends")]
    assert offenders == []


def test_models_and_product_never_import_test_oracles() -> None:
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for package in ("renderer", "jobs", "export") for path in sorted((ROOT / package).rglob("*.py"))
                 for name in sorted(_imported_modules(path)) if name.split(".")[0] == "tests"]
    assert offenders == []


def _module_level_imports(path: Path) -> set[str]:
    """Modules imported by a file's top-level statements (not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_product_module_imports_the_benchmarks() -> None:
    """Benchmarks live in jobs/bench; only `render bench` (jobs/cli/bench.py) imports them, lazily."""
    bench = ROOT / "jobs" / "bench"
    offenders = []
    for package in ("renderer", "jobs", "export"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if bench in path.parents:
                continue
            lazy_allowed = path == ROOT / "jobs" / "cli" / "bench.py"
            names = _module_level_imports(path) if lazy_allowed else _imported_modules(path)
            offenders += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(names)
                          if name == "jobs.bench" or name.startswith("jobs.bench.")]
    assert offenders == []
    assert (bench / "measure.py").is_file()  # the check looks where the benchmarks are
    strays = [path.relative_to(ROOT) for package in ("renderer", "jobs", "export")
              for path in (ROOT / package).rglob("*bench*.py")
              if bench not in path.parents and path != ROOT / "jobs" / "cli" / "bench.py"]
    assert strays == []  # no benchmark module among the product's


def _defines(path: Path, dotted: str) -> bool:
    """Whether ``path`` defines ``Name`` or ``Class.method`` at its top level."""
    scope: list[ast.stmt] = ast.parse(path.read_text(encoding="utf-8")).body
    for part in dotted.split("."):
        found = next((node for node in scope if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                      and node.name == part), None)
        if found is None:
            return False
        scope = found.body
    return True


def test_architecture_map_names_only_what_exists() -> None:
    """Every `path` and `path::name` ARCHITECTURE.md points to exists: the map stays true to the code."""
    import re

    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    references = re.findall(r"`((?:renderer|jobs|export|tests|samples)/[\w./-]*)(?:::([\w.]+))?`", text)
    assert len(references) > 40
    stale = [f"{path}::{name}" if name else path for path, name in references
             if not (ROOT / path).exists() or (name and not _defines(ROOT / path, name))]
    assert stale == [], f"ARCHITECTURE.md names what no longer exists (update the map): {stale}"
