"""The folders of memgen stack in one order (docs/design.md, "Layout"): each imports only folders before it."""

import ast
from pathlib import Path

import memgen

ROOT = Path(memgen.__file__).parent

#: docs/design.md's order; folders on one line are peers and import neither each other
ORDER = [
    ["format"],
    ["ir"],
    ["generators"],
    ["render"],
    ["io"],
    ["pipeline"],
    ["scorers"],
    ["kernels"],
    ["models"],
    ["baselines", "memslot_ref"],
    ["evaluation"],
    ["harness"],
    ["bridge"],
    ["selection", "audit"],
    ["cli"],
]
RANK = {name: rank for rank, peers in enumerate(ORDER) for name in peers}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "memgen" else None


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "memgen":
                yield from (f"memgen.{alias.name}" for alias in node.names)
            elif node.module.startswith("memgen."):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("memgen."))


def test_every_folder_is_in_the_order():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - {"templates", "data"} <= set(RANK), sorted(folders - set(RANK))


def test_no_folder_imports_a_later_or_peer_folder():
    back_edges = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _folder("memgen." + ".".join(path.relative_to(ROOT).with_suffix("").parts))
        if own is None or own not in RANK:
            continue
        for target in _imports(path):
            other = _folder(target)
            if other is None or other == own or other not in RANK:
                continue
            if RANK[other] >= RANK[own]:
                back_edges.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not back_edges, back_edges
