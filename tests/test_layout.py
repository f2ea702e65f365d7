"""The dependencies point one way: krnn_signals (code location) -> assets -> krnn_core, and krnn_core has no dagster."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data", "features", "model", "signals", "reports")


def _imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at its top or inside functions."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            packages.add(node.module.split(".")[0])
    return packages


@pytest.mark.parametrize(
    ("package", "forbidden"), [("assets", {"krnn_signals"}), ("krnn_core", {"dagster", "assets", "krnn_signals"})]
)
def test_no_module_imports_against_the_flow(package, forbidden):
    modules = sorted((ROOT / package).rglob("*.py"))
    wrong = {str(m.relative_to(ROOT)): sorted(_imported_packages(m) & forbidden) for m in modules}
    assert len(modules) > 5 and {m: names for m, names in wrong.items() if names} == {}


def test_the_parser_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from dagster import asset\n")
    assert _imported_packages(module) == {"os", "dagster"}


def test_krnn_core_is_one_folder_per_stage_and_tests_mirror_it():
    for stage in STAGES:
        assert (ROOT / "krnn_core" / stage / "__init__.py").exists(), stage
        tests = {p.stem for p in (ROOT / "tests" / "krnn_core" / stage).rglob("test_*.py")}
        modules = {f"test_{p.stem}" for p in (ROOT / "krnn_core" / stage).rglob("*.py") if p.stem != "__init__"}
        assert tests & modules, stage  # each stage's tests sit in its own folder, named after its modules
    flat = {p.stem for p in (ROOT / "krnn_core").glob("*.py")} - {"__init__"}
    assert flat == {"alerts", "config", "tables", "warehouse"}  # shared by the stages
