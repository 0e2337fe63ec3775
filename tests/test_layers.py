"""The package's one-way dependency rule, read from the imports of every module: a layer imports only
the layers below it (siblings such as train and eval, or bench and app, not each other; the
foundation's modules and the entry points may use their neighbours), and nothing imports the app, the
benchmarks or the CLI."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fastdiff"
LAYERS = [  # lowest first
    {"config", "device", "data", "images", "report"},
    {"nn"},
    {"export"},
    {"diffusion"},
    {"train", "eval", "lab"},
    {"web"},
    {"bench", "app"},
    {"cli", "__main__", "__init__"},
]
OPEN_LAYERS = (0, len(LAYERS) - 1)  # whose parts may import each other
RANK = {part: rank for rank, layer in enumerate(LAYERS) for part in layer}


def part_of(module: Path) -> str:
    """The layer a module belongs to: its subpackage, or its own name at the top level."""
    relative = module.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_parts(module: Path) -> set[str]:
    """The parts of fastdiff a module imports, relative imports resolved."""
    package = module.relative_to(PACKAGE).parent.parts
    parts = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                names = [target[0]] if target else [alias.name for alias in node.names]
            elif node.module and node.module.split(".")[0] == "fastdiff":
                target = node.module.split(".")[1:]
                names = [target[0]] if target else [alias.name for alias in node.names]
            else:
                continue
            parts.update(names)
        elif isinstance(node, ast.Import):
            parts.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("fastdiff.") and alias.name.count(".") >= 1
            )
    return parts


def test_every_module_has_a_layer():
    assert {part_of(m) for m in PACKAGE.rglob("*.py")} <= set(RANK)


def test_layers_import_only_downwards():
    wrong = []
    for module in sorted(PACKAGE.rglob("*.py")):
        own = part_of(module)
        for part in imported_parts(module) - {own}:
            if part in RANK and (RANK[part] > RANK[own] or RANK[part] == RANK[own] not in OPEN_LAYERS):
                wrong.append(f"{module.relative_to(PACKAGE)} imports {part}")
    assert not wrong, "imports against the layer rule: " + "; ".join(wrong)


def test_imports_are_read_with_relative_imports_resolved():
    module = PACKAGE / "diffusion" / "sampling.py"
    assert "nn" in imported_parts(module) and "app" not in imported_parts(module)
    assert imported_parts(PACKAGE / "cli" / "app.py") == {"app"}  # from ..app.ui, two levels up
    commands = set().union(*(imported_parts(module) for module in (PACKAGE / "cli").glob("*.py")))
    assert commands >= {"bench", "app", "eval", "train", "cli"}
