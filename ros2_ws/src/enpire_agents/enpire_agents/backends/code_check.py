"""Pull the policy source out of a model's reply and check it statically before it costs a trial.

The check is a cheap first gate, not the security boundary: the sandbox enforces imports and
deadlines at run time. Its job is to reject early, with a reason a model (or the agent loop) can act
on, the code that would certainly be refused or break: bad syntax, a missing contract, imports outside
the task's allowed imports (`policy_runtime.allowed_imports`), and the usual escape hatches (dynamic
import/eval, file access, dunder walking).
"""
from __future__ import annotations

import ast
import re
from typing import Literal

from pydantic import BaseModel

from enpire_rollout.policy_runtime import allowed_imports
from enpire_rollout.source_parse import parse_source

CheckKind = Literal['ok', 'no_code', 'syntax', 'contract', 'forbidden']

REQUIRED_METHODS = ('reset', 'act', 'on_attempt_failed')

# Builtins that reach outside the policy's own computation (import, code execution, files, the
# interpreter's namespaces, interactive hooks). Referencing them at all is refused.
FORBIDDEN_NAMES = frozenset({
    '__import__', 'eval', 'exec', 'compile', 'open', 'globals', 'locals', 'vars', 'breakpoint',
    '__builtins__', '__loader__', '__spec__', '__file__',
})
# Attributes that walk from an ordinary object to modules, frames or code objects (the classic
# `().__class__.__bases__[0].__subclasses__()` escape), on any object.
FORBIDDEN_ATTRIBUTES = frozenset({
    '__class__', '__bases__', '__base__', '__mro__', '__subclasses__', '__globals__', '__builtins__',
    '__code__', '__closure__', '__dict__', '__getattribute__', '__reduce__', '__reduce_ex__', '__import__',
    '__loader__', '__spec__', '__self__', '__func__', '__file__', '__setattr__', '__delattr__',
    'f_globals', 'f_locals', 'f_builtins', 'f_back', 'f_code', 'gi_frame', 'gi_code', 'cr_frame',
    'tb_frame', 'co_code', 'ctypes', 'ctypeslib',
})
# Members of allowed modules that still do I/O or evaluate strings as code (numpy's pickle loader,
# typing's annotation evaluator): refused when reached through the module or imported by name.
FORBIDDEN_MODULE_MEMBERS = {
    'numpy': frozenset({'load', 'save', 'savez', 'savez_compressed', 'loadtxt', 'savetxt', 'genfromtxt',
                        'fromfile', 'tofile', 'memmap', 'ctypeslib', 'f2py', 'distutils', 'DataSource',
                        'testing', 'fromregex', 'lib'}),
    'typing': frozenset({'get_type_hints', 'ForwardRef', '_eval_type'}),
}
# Reflection builtins are fine on the policy's own objects (getattr(self, 'gain', 1.0)) but not on
# modules, and never with a dunder name.
REFLECTION = frozenset({'getattr', 'setattr', 'delattr', 'hasattr'})

_FENCE = re.compile(r'```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)', re.DOTALL)


class CheckResult(BaseModel):
    """What the gate decided; `reason` is written for the model: it goes back in a repair prompt."""
    ok: bool
    kind: CheckKind
    reason: str = ''
    code: str | None = None          # the extracted source (also when it failed the check)
    line: int | None = None          # where the problem is, when there is one place

    @classmethod
    def fail(cls, kind: CheckKind, reason: str, code: str | None, line: int | None = None) -> CheckResult:
        return cls(ok=False, kind=kind, reason=reason, code=code, line=line)


def extract_code(reply: str) -> str | None:
    """The policy source in a reply: the fenced block that defines `Policy` (else the longest python
    block), or the whole reply when it is itself a Python module; None when there is no code."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(reply or '')]
    candidates = [body for lang, body in blocks if lang in ('', 'python', 'py', 'python3')]
    if candidates:
        defining = [b for b in candidates if re.search(r'^class\s+Policy\b', b, re.MULTILINE)]
        return max(defining or candidates, key=len).strip('\n') + '\n'
    text = (reply or '').strip()
    try:
        tree = parse_source(text)
    except (SyntaxError, ValueError):
        return None
    # A bare word or sentence fragment can parse as an expression; only real statements count as code.
    code_nodes = (ast.ClassDef, ast.FunctionDef, ast.Import, ast.ImportFrom)
    if any(isinstance(node, code_nodes) for node in tree.body):
        return text + '\n'
    return None


def _check_imports(tree: ast.Module, allowed: frozenset[str]) -> tuple[str, int] | None:
    def _import_allowed(module: str) -> bool:
        return module in allowed

    def _root_allowed(root: str) -> bool:   # a whole package (numpy), never a project package
        return _import_allowed(root) and not root.startswith('enpire_')

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split('.')[0]
                if not (_import_allowed(alias.name) or _root_allowed(root)):
                    return f'import of {alias.name!r} is not allowed', node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                return 'relative imports are not allowed', node.lineno
            module = node.module or ''
            root = module.split('.')[0]
            for alias in node.names:
                # A star import would bring the refused members of numpy / typing in unnamed.
                if alias.name == '*' and root in FORBIDDEN_MODULE_MEMBERS:
                    return f'star import from {module!r} is not allowed', node.lineno
                # `from <package> import <tools>` names the allowed submodule itself.
                if not (_import_allowed(module) or _import_allowed(f'{module}.{alias.name}')
                        or _root_allowed(root)):
                    return f'import from {module!r} is not allowed', node.lineno
                if alias.name in FORBIDDEN_MODULE_MEMBERS.get(root, ()):
                    return (f'{module}.{alias.name} is not allowed (file access or string evaluation)',
                            node.lineno)
    return None


def _module_aliases(tree: ast.Module, allowed: frozenset[str]) -> dict[str, str]:
    """Local name -> root module, for every module bound by an import (`import numpy as np`)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split('.')[0]
                aliases[alias.asname or root] = root
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if f'{node.module}.{alias.name}' in allowed:   # a submodule imported by name
                    aliases[alias.asname or alias.name] = node.module.split('.')[0]
    return aliases


def _check_names(tree: ast.Module, allowed: frozenset[str]) -> tuple[str, int] | None:
    modules = _module_aliases(tree, allowed)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            return f'use of {node.id!r} is not allowed', node.lineno
        if isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRIBUTES:
                return f'access to attribute {node.attr!r} is not allowed', node.lineno
            if isinstance(node.value, ast.Name) and node.value.id in modules:
                root = modules[node.value.id]
                if node.attr in FORBIDDEN_MODULE_MEMBERS.get(root, ()):
                    return (f'{node.value.id}.{node.attr} is not allowed (file access or string evaluation)',
                            node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in REFLECTION:
            args = node.args
            if args and isinstance(args[0], ast.Name) and args[0].id in modules:
                return f'{node.func.id}() on module {args[0].id!r} is not allowed', node.lineno
            if len(args) > 1 and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str) \
                    and args[1].value.startswith('__'):
                return f'{node.func.id}() with dunder name {args[1].value!r} is not allowed', node.lineno
    return None


def _check_contract(tree: ast.Module) -> tuple[str, int | None] | None:
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == 'Policy']
    if not classes:
        return ('no top-level class Policy (the contract needs class Policy with reset, act, '
                'on_attempt_failed)', None)
    policy = classes[-1]
    methods = {n.name: n for n in policy.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    missing = [m for m in REQUIRED_METHODS if m not in methods]
    if missing:
        return f'class Policy lacks method(s) {", ".join(missing)}', policy.lineno
    for name in REQUIRED_METHODS:
        method = methods[name]
        if isinstance(method, ast.AsyncFunctionDef):
            return f'Policy.{name} must be a plain method, not async', method.lineno
        if len(method.args.args) < 2 and method.args.vararg is None:
            return f'Policy.{name} must take (self, argument)', method.lineno
    return None


def check_code(source: str | None, task: str) -> CheckResult:
    """Syntax, then forbidden imports and names, then the contract; the first problem found wins.
    `task`: the task the policy is for (its allowed imports)."""
    if source is None or not source.strip():
        return CheckResult.fail('no_code', 'the reply contains no Python code block', None)
    try:
        tree = parse_source(source)
    except SyntaxError as err:
        return CheckResult.fail('syntax', f'syntax error at line {err.lineno}: {err.msg}', source, err.lineno)
    except ValueError as err:   # e.g. null bytes in the source
        return CheckResult.fail('syntax', f'unparsable source: {err}', source)
    allowed = allowed_imports(task)
    for finding in (_check_imports(tree, allowed), _check_names(tree, allowed)):
        if finding is not None:
            reason, line = finding
            return CheckResult.fail('forbidden', f'{reason} (line {line}); allowed imports: '
                                    f'{", ".join(sorted(allowed))}', source, line)
    contract = _check_contract(tree)
    if contract is not None:
        return CheckResult.fail('contract', contract[0], source, contract[1])
    return CheckResult(ok=True, kind='ok', code=source)


def check_reply(reply: str, task: str) -> CheckResult:
    """extract_code + check_code: what every backend runs on a model's reply."""
    return check_code(extract_code(reply), task)
