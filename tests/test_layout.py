"""The tree's rules, read from the source: what may import what, no import circles, files a reader can take in one
sitting, and a README whose "What is where" names the folders that exist."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tests.support import LAMBDA_DIR, ROOT

# top-level folders of Python code, and the module names their files import each other by
PACKAGES = ("models", "ledger", "dashboard", "local_api", "deployer", "benchmarks", "scripts")
FUNCTION = ("lambda_handler.py", "forecast")  # what the predict zip ships (package.FUNCTION_FILES)
FUNCTION_THIRD_PARTY = {"numpy", "onnxruntime", "orjson", "snapshot_restore_py"}  # lambda/requirements.txt + Lambda's own
MAX_LINES = 400


def source_files(root: Path = ROOT, packages=PACKAGES) -> list[Path]:
    files = [p for pkg in packages for p in (root / pkg).rglob("*.py")]
    files += [p for p in (root / "lambda").rglob("*.py") if p.name not in SHIMS]
    return sorted(p for p in files if "__pycache__" not in p.parts)


def module_name(path: Path, root: Path = ROOT) -> str:
    """The name other code imports `path` by: lambda/ is not a package, so its files are top-level modules."""
    lam = root / "lambda"
    rel = path.relative_to(lam if path.is_relative_to(lam) else root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module `path` imports, anywhere in it (function-level imports too), relative ones resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import submodule`
    return {m for m in out if m and m != "__future__"}


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the project's modules it imports (a name that is not one of ours is dropped)."""
    paths = {module_name(p, root): p for p in source_files(root, packages)}
    out = {}
    for mod, path in paths.items():
        targets = set()
        for imp in imports(path, root):
            while imp and imp not in paths:  # `pkg.mod.Name` -> `pkg.mod`
                imp = imp.rpartition(".")[0]
            if imp and imp != mod and not mod.startswith(imp + "."):  # a module's own package __init__ is implicit
                targets.add(imp)
        out[mod] = targets
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def top(name: str) -> str:
    return name.split(".")[0]


SHIMS = {"deploy.py"}  # a one-screen forwarder for the command users typed before the move (python lambda/deploy.py)
LAMBDA_MODULES = {module_name(p).split(".")[0] for p in LAMBDA_DIR.rglob("*.py") if p.name not in SHIMS} - {"events"}

# folder -> the project's top-level names it must never import (DESIGN's arrows: imports point down)
FORBIDDEN = {
    "models": {"ledger", "dashboard", "local_api", "deployer", "benchmarks", "scripts", *LAMBDA_MODULES},
    "ledger": {"dashboard", "local_api", "deployer", "benchmarks", "scripts", *LAMBDA_MODULES},
    "dashboard": {"local_api", "deployer", "benchmarks", "scripts", *LAMBDA_MODULES},
    "local_api": {"dashboard", "ledger", "deployer", "benchmarks", "scripts", "lambda_handler", "forecast"},
    "deployer": {"dashboard", "ledger", "local_api", "benchmarks", "scripts", "lambda_handler", "forecast"},
    "lambda": {"dashboard", "ledger", "local_api", "deployer", "benchmarks", "scripts", "models"},
}


def folder_of(mod: str) -> str:
    return "lambda" if top(mod) in LAMBDA_MODULES else top(mod)


def upward_imports(graph: dict[str, set[str]], folder: str) -> list[str]:
    return [
        f"{mod} imports {t}"
        for mod, targets in graph.items()
        if folder_of(mod) == folder
        for t in targets
        if top(t) in FORBIDDEN[folder]
    ]


def cycles_in(graph: dict[str, set[str]]) -> list[str]:
    cycles, state = [], {}

    def visit(mod: str, stack: list[str]) -> None:
        state[mod] = "open"
        for t in sorted(graph.get(mod, ())):
            if state.get(t) == "open":
                cycles.append(" -> ".join([*stack[stack.index(t) :], t]))
            elif t not in state:
                visit(t, [*stack, t])
        state[mod] = "done"

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    return cycles


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_point_down(folder, graph):
    bad = upward_imports(graph, folder)
    assert not bad, f"{folder}/ reaches up or sideways: {bad}"


def test_the_function_imports_only_the_standard_library_numpy_and_onnxruntime():
    """What the zip ships imports nothing outside lambda/: no pandas, torch, models/, boto3 on the cold path."""
    files = [LAMBDA_DIR / "lambda_handler.py", *sorted((LAMBDA_DIR / "forecast").rglob("*.py"))]
    allowed = set(sys.stdlib_module_names) | FUNCTION_THIRD_PARTY | {"forecast"}
    bad = {f"{p.relative_to(ROOT)}: {m}" for p in files for m in imports(p) if top(m) not in allowed}
    assert not bad, sorted(bad)


def test_no_package_imports_itself_in_a_circle(graph):
    """A circle (a -> b -> ... -> a) means neither can be read, tested or moved without the other."""
    assert not (cycles := cycles_in(graph)), cycles


def test_the_checker_sees_a_planted_circle_and_an_upward_import(tmp_path):
    """The rules above must be able to fail: a tree with a circle through a function-level import, a relative
    import, and models/ and lambda/ reaching up."""
    for folder, files in {
        "models": {"__init__.py": "", "a.py": "from . import b\n", "b.py": "def f():\n    from models.a import x\n"},
        "dashboard": {"__init__.py": "", "app.py": "import models.a\n"},
        "lambda": {"package.py": "from deployer import plan\n"},
        "deployer": {"__init__.py": "", "plan.py": "import package\n"},
    }.items():
        (tmp_path / folder).mkdir()
        for name, text in files.items():
            (tmp_path / folder / name).write_text(text)
    (tmp_path / "models" / "c.py").write_text("import dashboard.app\n")
    g = import_graph(tmp_path, ("models", "dashboard", "deployer"))
    assert g["models.a"] == {"models.b"} and g["models.b"] == {"models.a"}
    assert set(cycles_in(g)) == {"models.a -> models.b -> models.a", "deployer.plan -> package -> deployer.plan"}
    assert upward_imports(g, "models") == ["models.c imports dashboard.app"]
    assert "package imports deployer.plan" in upward_imports(g, "lambda")


def test_every_source_file_reads_in_one_sitting():
    long = {str(p.relative_to(ROOT)): n for p in source_files() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines, split by concept: {long}"


def readme_tree() -> list[str]:
    """The folders README's "What is where" names, as paths (an indented `data/` under `models/` is models/data)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## What is where", 1)[1].split("```", 2)[1]
    folders, parent = [], ""
    for line in block.splitlines():
        if m := re.match(r"([a-z_]+)/\s", line):  # a top-level folder opens its line
            parent = m.group(1)
            folders.append(parent)
        elif m := re.match(r"  ([a-z_]+)/\s", line):  # one of its subfolders
            folders.append(f"{parent}/{m.group(1)}")
        folders += re.findall(r"\s{4}([a-z_]+)/\s{2}", line)  # a second folder sharing the line
    return folders


def test_readme_what_is_where_matches_the_tree():
    named = readme_tree()
    assert {"lambda", "local_api", "deployer", "models", "models/data", "models/runtime"} <= set(named), named
    missing = [f for f in named if not (ROOT / f).is_dir()]
    assert not missing, f"README's What is where names folders that do not exist: {missing}"
    code_dirs = {p.parent.relative_to(ROOT).parts[0] for p in ROOT.glob("*/*.py")} - {".venv", ".venv-fn"}
    unnamed = sorted(code_dirs - set(named))
    assert not unnamed, f"folders with code that README's What is where does not name: {unnamed}"


def test_lambda_holds_what_ships_and_how_it_is_built():
    """A newcomer opening lambda/ sees the function and its build; the emulator and the deployer live elsewhere."""
    here = {p.name for p in LAMBDA_DIR.iterdir() if p.name != "__pycache__"}
    build = {
        "package.py",
        "package_build.py",
        "package_checks.py",
        "smoke.py",
        "settings.py",
        "runtime_python.py",
        "template.yaml",
    }
    contract = {"openapi.yaml", "events", "requirements.txt"}
    assert here <= {*FUNCTION, *build, *contract, *SHIMS}, sorted(here - {*FUNCTION, *build, *contract, *SHIMS})
    for shim in SHIMS:
        text = (LAMBDA_DIR / shim).read_text()
        assert len(text.splitlines()) <= 12 and "moved" in text and "import deployer" not in text
