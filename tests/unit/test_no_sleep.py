"""No test sleeps to wait for something: every module under tests/ is scanned (ast) for sleeps.

A test waits on the event itself (a log line, a file, a message, a counter, a process exit) through
tests.helpers.wait_until, or passes a clock to the component that needs time to pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

# (module, function) -> why its sleep is not a wait. Only the wait helper's own poll interval.
ALLOWED = {
    ("helpers.py", "wait_until"): "the poll interval between two checks of the condition waited on",
}


def _is_sleep(call: ast.Call, from_time: set[str]) -> bool:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id in from_time  # from time import sleep
    if not isinstance(f, ast.Attribute):
        return False
    if f.attr == "sleep":  # time.sleep, asyncio.sleep
        return isinstance(f.value, ast.Name) and f.value.id in ("time", "asyncio")
    if f.attr == "wait" and isinstance(f.value, ast.Call):  # Event().wait(t): a sleep in disguise
        made = f.value.func
        name = made.attr if isinstance(made, ast.Attribute) else getattr(made, "id", "")
        return name == "Event"
    return False


def sleeps(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, enclosing function) of each time.sleep / sleep-from-time / fresh Event().wait call."""
    from_time = {a.asname or a.name for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module == "time"
                 for a in n.names if a.name == "sleep"}
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            func = node.name
        if isinstance(node, ast.Call) and _is_sleep(node, from_time):
            found.append((node.lineno, func))
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(tree, "<module>")
    return found


def test_the_scan_finds_every_spelling_of_a_sleep() -> None:
    code = ("import time, asyncio, threading\nfrom time import sleep as nap\n"
            "def f():\n    time.sleep(1)\n    nap(1)\n    threading.Event().wait(1)\n"
            "    asyncio.sleep(1)\n"
            "def g(stop):\n    stop.wait(1)\n")
    assert sleeps(ast.parse(code)) == [(4, "f"), (5, "f"), (6, "f"), (7, "f")]


def test_no_test_sleeps_to_wait() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(TESTS).as_posix()
        for line, func in sleeps(ast.parse(path.read_text(), str(path))):
            if (rel, func) not in ALLOWED:
                offenders.append(f"tests/{rel}:{line} in {func}()")
    assert not offenders, ("sleeps in tests (wait on the event with tests.helpers.wait_until, "
                           "or pass a clock): " + ", ".join(offenders))
