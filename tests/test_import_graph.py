"""The services import each other without cycles, and only at module level (tools/check_imports.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "check_imports.py"


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          check=False)


def package(root: Path, files: dict[str, str]) -> Path:
    """A tiny ``bot.services`` under ``root`` with the given modules."""
    folder = root / "bot" / "services"
    folder.mkdir(parents=True)
    (root / "bot" / "__init__.py").write_text("")
    (folder / "__init__.py").write_text("")
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return root


def test_the_services_import_graph_is_acyclic_and_module_level() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no cycles, no function-level imports" in result.stdout


def test_a_clean_package_passes(tmp_path: Path) -> None:
    root = package(tmp_path, {
        "shared": "import json\n",
        "a": "from bot.services import shared\nfrom bot.storage import models\n",
        "b": "from bot.services import a, shared\n\n\ndef f() -> None:\n    import json\n",
    })
    result = check("--root", str(root))
    assert result.returncode == 0, result.stdout
    assert "4 modules, 3 imports among them" in result.stdout


def test_a_cycle_is_found_in_every_import_form(tmp_path: Path) -> None:
    root = package(tmp_path, {
        "a": "from bot.services import b, shared\n",
        "b": "import bot.services.c\n",
        "c": "from bot.services.a import thing\n",
        "shared": "",
        "x": "from . import y\n",
        "y": "from .x import z\n",
    })
    result = check("--root", str(root))
    assert result.returncode == 1
    assert "import cycle among bot.services.a, bot.services.b, bot.services.c" in result.stdout
    assert "bot.services.c -> bot.services.a  (bot/services/c.py:1)" in result.stdout
    assert "import cycle among bot.services.x, bot.services.y" in result.stdout
    assert "shared" not in result.stdout.split("import cycle")[1].split("\n")[0]


def test_an_import_inside_a_function_is_refused(tmp_path: Path) -> None:
    root = package(tmp_path, {
        "a": "async def f() -> None:\n    from bot.services.b import g\n    await g()\n",
        "b": "class C:\n    def m(self) -> None:\n        from . import a\n",
        "c": "def h() -> None:\n    import bot.storage.models\n",
    })
    result = check("--root", str(root))
    assert result.returncode == 1
    assert "bot/services/a.py:2: import inside f(): from bot.services.b import g" in result.stdout
    assert "bot/services/b.py:3: import inside C.m(): from . import a" in result.stdout
    assert "bot/services/c.py:2: import inside h(): import bot.storage.models" in result.stdout
    assert "cycle" not in result.stdout  # function-level imports are refused, not counted as edges
