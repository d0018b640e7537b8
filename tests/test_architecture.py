"""The two wings, kept apart: reading digits (the reading wing, the server, the library's
front door) never reaches torch or OpenCV, and the reading wing never imports the training
wing, not even lazily. Walks the import statements of the package's own source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import EXAMPLES

import digitrec

PACKAGE = Path(digitrec.__file__).parent
FORBIDDEN = ("torch", "cv2", "digitrec.training")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(module: str, top_level_only: bool) -> set[str]:
    """The modules `module` imports (absolute names); with `top_level_only`, only those
    imported when it is imported (not inside functions, nor under TYPE_CHECKING)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if (
                top_level_only
                and isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                found.add(name)
                # `from . import x` may import the submodule x
                found.update(
                    f"{name}.{a.name}" for a in child.names if f"{name}.{a.name}" in MODULES
                )
            visit(child)

    visit(tree)
    return found


def _parents(name: str) -> list[str]:
    """Importing a.b.c imports a and a.b first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def reachable(roots: list[str]) -> dict[str, str]:
    """Every module reached by importing `roots`, each with the module that imports it."""
    seen = {r: "(root)" for r in roots}
    todo = list(roots)
    while todo:
        module = todo.pop()
        for name in _imports(module, top_level_only=True):
            for m in _parents(name):
                if m not in seen:
                    seen[m] = module
                    if m in MODULES:
                        todo.append(m)
    return seen


def _chain(seen: dict[str, str], module: str) -> str:
    chain = [module]
    while seen.get(chain[-1], "(root)") != "(root)":
        chain.append(seen[chain[-1]])
    return " <- ".join(chain)


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


READING_SIDE = sorted(
    m
    for m in MODULES
    if m.startswith(("digitrec.reading", "digitrec.server"))
    or m in ("digitrec", "digitrec.loading", "digitrec.evaluate", "digitrec.feedback")
)


def test_the_walk_sees_torch_where_it_is():
    # the walk itself works: the training wing does reach torch
    seen = reachable(["digitrec.training.fit"])
    assert "torch" in seen and "digitrec.reading.preprocess" in seen


def test_reading_and_serving_never_reach_torch_or_opencv():
    seen = reachable(READING_SIDE)
    bad = sorted(_chain(seen, m) for m in seen if _forbidden(m))
    assert not bad, "reading digits reaches the training side:\n" + "\n".join(bad)


def test_the_reading_wing_never_imports_the_training_wing_even_lazily():
    bad = {
        m: sorted(n for n in _imports(m, top_level_only=False) if _forbidden(n))
        for m in MODULES
        if m.startswith("digitrec.reading")
    }
    assert not {m: n for m, n in bad.items() if n}


def test_serving_a_picture_loads_neither_torch_nor_opencv():
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from digitrec.server import create_app\n"
        "with TestClient(create_app()) as client:\n"
        f"    r = client.post('/api/predict', files={{'file': open({str(EXAMPLES / '7-photo.jpg')!r}, 'rb')}})\n"
        "    assert r.status_code == 200 and r.json()['digit'] == 7, r.text\n"
        "from digitrec import Predictor\n"
        "assert Predictor().read_number("
        + repr(str(EXAMPLES / "numbers" / "4096.png"))
        + ").text\n"
        "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_package_exports_the_predictor_lazily():
    code = (
        "import sys, digitrec\n"
        "assert 'digitrec.reading.predictor' not in sys.modules\n"
        "from digitrec import Predictor, load_predictor\n"
        "from digitrec.reading.predictor import Predictor as P\n"
        "assert Predictor is P and callable(load_predictor)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
