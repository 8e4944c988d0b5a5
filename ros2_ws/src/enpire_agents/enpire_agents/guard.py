"""What keeps agents away from the reset, the verifier, the safety limits and the evaluation seeds.

Three checks, all in code:
- `check_proposal`: a proposal's policy source may reach the project only through the modules the
  sandbox's policy contract allows for its task (the project's entries of
  `policy_runtime.allowed_imports(task)`); it may not import EN, the simulator, the agents, a task's
  other modules or ROS, may not read the debug ground truth, and may not mention the held-out
  evaluation seeds.
- `AgentView`: the only experiment facts an agent (and its backend) receives; the evaluation seeds
  are not among them.
- `ProtectedFiles`: EN's configuration (reset, verification, safety limits), the simulator's and the
  experiment's own config are hashed before a run and again after; any change makes the run invalid.
"""
from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from enpire_agents.experiment import ExperimentConfig
from enpire_rollout.policy_runtime import allowed_imports
from enpire_rollout.source_parse import parse_source

FORBIDDEN_ROOTS = frozenset({'rclpy', 'rosbags', 'importlib', 'builtins'})   # and every enpire_* package


def _forbidden_root(name: str) -> bool:
    root = name.split('.')[0]
    return root in FORBIDDEN_ROOTS or root.startswith('enpire_')


def allowed_project_modules(task: str) -> frozenset[str]:
    """The project modules open to a policy of `task`: the sandbox's own list, so the guard never refuses
    what it runs."""
    return frozenset(m for m in allowed_imports(task) if _forbidden_root(m))
FORBIDDEN_NAMES = frozenset({'debug_ground_truth', '__import__', 'evaluation_seeds', 'eval_seeds',
                             'held_out_seeds', 'ood_seeds'})
SEED_LITERAL_MIN = 1000     # an int literal this large equal to a held-out seed is a leak, not a constant


class GuardVerdict(BaseModel):
    ok: bool
    reasons: list[str] = Field(default_factory=list)


def check_proposal(code: str, task: str, held_out_seeds: Iterable[int] = ()) -> GuardVerdict:
    """Reject policy code for `task` that reaches past the contract or mentions held-out seeds."""
    open_modules = allowed_project_modules(task)
    try:
        module = parse_source(code)
    except SyntaxError as exc:
        return GuardVerdict(ok=False, reasons=[f'syntax error line {exc.lineno}: {exc.msg}'])
    held_out = {s for s in held_out_seeds if s >= SEED_LITERAL_MIN}
    reasons: list[str] = []
    for node in ast.walk(module):
        for name in _imported_modules(node):
            if name in open_modules:
                continue
            if _forbidden_root(name):
                reasons.append(f'line {node.lineno}: imports {name} (of the project only '
                               f'{", ".join(sorted(open_modules))} are open to a policy)')
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            reasons.append(f'line {node.lineno}: uses {node.id}')
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            reasons.append(f'line {node.lineno}: uses .{node.attr}')
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            lowered = node.value.lower()
            hit = next((n for n in FORBIDDEN_NAMES if n.lower() in lowered), None)
            if hit:
                reasons.append(f'line {node.lineno}: string mentions {hit}')
        elif (isinstance(node, ast.Constant) and type(node.value) is int and node.value in held_out):
            reasons.append(f'line {node.lineno}: mentions a held-out evaluation seed')
    return GuardVerdict(ok=not reasons, reasons=sorted(set(reasons)))


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return ['.' * node.level + (node.module or '')]
        base = node.module or ''
        if '.' not in base and _forbidden_root(base):   # `from <package> import <tools>` names submodules
            return [f'{base}.{alias.name}' for alias in node.names]
        return [base]
    return []


class AgentView(BaseModel):
    """The experiment as an agent sees it: no evaluation seeds, no verifier or safety settings."""
    task: str
    agent_id: str
    attempts: int
    steps_per_attempt: int
    distribution: str
    improvement_seeds: list[int]
    trials_per_node: int
    success_bar_k: int


def agent_view(config: ExperimentConfig, agent_id: str) -> AgentView:
    return AgentView(task=config.task, agent_id=agent_id, attempts=config.attempts,
                     steps_per_attempt=config.steps_per_attempt, distribution=config.distribution,
                     improvement_seeds=config.improvement_seeds(),
                     trials_per_node=config.improvement.trials_per_node, success_bar_k=config.success_bar.k)


def assert_improvement_seeds(seeds: Iterable[int], config: ExperimentConfig) -> None:
    """Raise when a seed an agent asked to run on is held out (evaluation or OOD)."""
    leaked = sorted(set(seeds) & config.held_out_seeds())
    if leaked:
        raise PermissionError(f'agents may not run on held-out evaluation seeds: {leaked[:5]}')


class Integrity(BaseModel):
    valid: bool
    changed: list[str] = Field(default_factory=list)
    hashes_before: dict[str, str] = Field(default_factory=dict)
    hashes_after: dict[str, str] = Field(default_factory=dict)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else 'missing'


class ProtectedFiles:
    """Hash files before a run; `verify()` afterwards says whether any changed (a change: run invalid)."""

    def __init__(self, paths: Iterable[str | Path]):
        self.paths = sorted({Path(p).resolve() for p in paths})
        self.before = {str(p): _sha256(p) for p in self.paths}

    def verify(self) -> Integrity:
        after = {str(p): _sha256(p) for p in self.paths}
        changed = [p for p in self.paths if self.before[str(p)] != after[str(p)]]
        return Integrity(valid=not changed, changed=[str(p) for p in changed],
                         hashes_before=self.before, hashes_after=after)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[4]


def default_protected_paths(experiment_config: str | Path | None = None,
                            root: Path | None = None) -> list[Path]:
    """EN's config and code for reset, verification and safety, every task folder, the simulator's and the
    experiment's config."""
    root = root or repo_root()
    env = root / 'ros2_ws/src/enpire_env'
    patterns = [(env / 'config', '*.yaml'), (env / 'enpire_env/reset', '*.py'),
                (env / 'enpire_env/verification', '*.py'), (env / 'enpire_env/safety', '*.py'),
                (root / 'ros2_ws/src/tasks', '*.py'), (root / 'ros2_ws/src/tasks', '*.yaml'),
                (root / 'sim/config', '*.yaml'),
                (root / 'ros2_ws/src/enpire_rollout/config', '*.yaml')]
    paths = [p for folder, pattern in patterns if folder.is_dir() for p in sorted(folder.rglob(pattern))]
    if experiment_config is not None:
        paths.append(Path(experiment_config))
    return paths
