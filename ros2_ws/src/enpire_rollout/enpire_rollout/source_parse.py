"""`ast.parse` that is safe to call from several threads at once.

CPython 3.11 keeps the AST-to-object recursion counter per interpreter, not per thread: two agents
checking their code at the same moment can fail with "SystemError: AST constructor recursion depth
mismatch" (fixed in 3.12). Every parse of policy source in the suite goes through this lock.
"""
from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse_source(source: str, filename: str = '<policy>') -> ast.Module:
    with _LOCK:
        return ast.parse(source, filename=filename)
