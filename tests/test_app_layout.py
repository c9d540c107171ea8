"""The app layer's shape: small files, no private core names, no patched Streamlit internals, pages
that are callables arranging views, and one set of rule defaults (the core's)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_FILES = sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("pages/*.py")])
PAGE_MODULES = ("overview", "heads", "process", "samples", "dependencies", "scheme")
MAX_LINES = 400


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_app_layer_has_files():
    assert (ROOT / "app" / "main.py").is_file()
    assert {p.stem for p in ROOT.glob("pages/*.py")} >= set(PAGE_MODULES)


@pytest.mark.parametrize("path", APP_FILES, ids=_relative)
def test_no_app_file_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize("path", APP_FILES, ids=_relative)
def test_no_private_core_name_is_imported(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pruning_core"):
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not [a.name for a in node.names if a.name.startswith("_")], (node.module, [a.name for a in node.names])
        if isinstance(node, ast.Import):
            assert not [a.name for a in node.names if a.name.startswith("pruning_core") and "._" in a.name]


@pytest.mark.parametrize("path", APP_FILES, ids=_relative)
def test_no_patched_streamlit_internals_and_no_exec(path):
    text = path.read_text()
    assert "PagesManager" not in text
    calls = [n.func.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert "exec" not in calls and "compile" not in calls


@pytest.mark.parametrize("name", PAGE_MODULES)
def test_a_page_is_a_render_callable_that_imports_no_other_page(name):
    module = importlib.import_module(f"pages.{name}")
    assert callable(module.render)
    tree = ast.parse(Path(module.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    ]
    assert not [m for m in imported if m and m.startswith("pages")], imported


def test_no_pages_folder_beside_the_entry_script():
    """Streamlit would treat a ``pages/`` folder beside the entry script as legacy multipage pages."""
    assert not (ROOT / "app" / "pages").exists()


def test_the_sidebar_rule_starts_at_the_core_thresholds():
    from app.state import rule_defaults
    from pruning_core.strategies.composite import Thresholds

    defaults = Thresholds()
    values = rule_defaults()
    assert values["rule_importance"] == defaults.importance
    assert values["rule_stability"] == defaults.stability and values["rule_use_stability"]
    assert values["rule_similarity"] == defaults.similarity and values["rule_use_similarity"]
    assert values["rule_logic"] == defaults.logic
