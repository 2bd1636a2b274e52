"""The layout (issue 18): engine and families below models, models below capabilities, tools on top."""

import ast
from pathlib import Path

import jaxmix
from jaxmix.families import COVARIANCE_TYPES, registry

PKG = Path(jaxmix.__file__).resolve().parent
RANK = {"engine": 0, "families": 0, "models": 1, "capabilities": 2, "tools": 3}


def _imports(path: Path) -> set[str]:
    """Every jaxmix module `path` imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxmix"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("jaxmix"))
    return out


def test_imports_point_one_way():
    wrong = []
    for layer, rank in RANK.items():
        for path in sorted((PKG / layer).rglob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if len(parts) > 1 and RANK.get(parts[1], -1) > rank:
                    wrong.append(f"{path.relative_to(PKG)} imports {name}")
    assert not wrong, wrong


def test_a_family_is_one_module_and_one_registry_line():
    """Every registered family but the renamed ones lives in its own families/gaussian_*.py module
    (the engine's internal ones, `names.INTERNAL_MODULES`, too)."""
    from jaxmix.families.names import INTERNAL_MODULES

    modules = {p.stem for p in (PKG / "families").glob("gaussian_*.py")}
    owners = {type(m).__module__.rsplit(".", 1)[1] for m in registry.COVARIANCE_MODELS.values()}
    internal = {type(registry.covariance_model(n)).__module__.rsplit(".", 1)[1] for n in INTERNAL_MODULES}
    assert owners | internal == modules
    assert not owners & internal
    assert tuple(registry.COVARIANCE_MODELS) == COVARIANCE_TYPES
