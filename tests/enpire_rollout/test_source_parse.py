"""Policy source is parsed under one lock (CPython 3.11's AST converter is not thread-safe), everywhere."""
import ast
import threading
from pathlib import Path

from enpire_rollout import source_parse

SRC = Path(__file__).resolve().parents[2] / 'ros2_ws' / 'src'


def test_parse_holds_the_lock_and_returns_the_module(monkeypatch):
    held = []
    real = ast.parse
    monkeypatch.setattr(source_parse.ast, 'parse',
                        lambda *a, **k: (held.append(source_parse._LOCK.locked()), real(*a, **k))[1])
    tree = source_parse.parse_source('class Policy:\n    pass\n')
    assert held == [True] and isinstance(tree, ast.Module) and tree.body[0].name == 'Policy'
    assert not source_parse._LOCK.locked()


def test_many_threads_parse_at_once():
    errors = []

    def work():
        for _ in range(50):
            try:
                source_parse.parse_source('def f(x):\n    return [i * x for i in range(3)]\n' * 20)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_no_module_of_the_suite_calls_ast_parse_directly():
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob('*.py')
                 if 'ast.parse(' in p.read_text() and p.name != 'source_parse.py'
                 and '/build/' not in str(p) and '/install/' not in str(p)]
    assert offenders == []
