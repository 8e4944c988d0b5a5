"""A library of parametrised Push-T strategy pieces, composed into complete policy sources: the offline
backend's strategy library for Push-T (`Task.strategies` names this module as `LIBRARY`).

A policy is described by a `Genome`: one variant per structural slot plus numeric parameters.
`compose(genome)` writes the policy source: imports, a `PARAMS` literal, a `# GENOME:` line (so any
policy written here can be read back with `genome_from_code`), then the pieces in order.

Slots and variants (each piece's module documents its variants and parameters):
    perception  raw | ema                   (perception.py)  pose from policy_tools.locate_block
    selection   twist | staged              (selection.py)   pose error and contact choice
    approach    direct | graph              (approach.py)    travel to the pre-contact point
    fine        none | strokes              (finish.py)      short measured strokes near the goal
    dither      none | cyclic               (finish.py)      jittered goals near the goal
    feedback    none | escalate             (feedback.py)    use of on_attempt_failed
    push (fixed)                            (push.py)        state machine and push primitive
    geometry (fixed)                        (geometry.py)    T geometry, contacts, coverage estimate

How a result steers the search (failure modes, the moves that answer them, the start): playbook.py.
"""
from __future__ import annotations

import ast
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field

from enpire_rollout.source_parse import parse_source
from enpire_task_pusht.strategies import approach, feedback, finish, geometry, perception, push, selection
from enpire_task_pusht.strategies.playbook import PLAYBOOK, START_ISSUE, START_TEXT, diagnose  # noqa: F401

SLOTS: dict[str, dict[str, str]] = {
    'perception': perception.VARIANTS,
    'selection': selection.VARIANTS,
    'approach': approach.VARIANTS,
    'fine': finish.FINE,
    'dither': finish.DITHER,
    'feedback': feedback.VARIANTS,
}
SLOT_ORDER = ('perception', 'selection', 'approach', 'fine', 'dither', 'feedback')

# name -> (default, low, high, kind, doc); kind: float | int | log
PARAM_SPECS: dict[str, tuple] = {}
for _mod in (geometry, perception, selection, approach, finish, feedback, push):
    PARAM_SPECS.update(_mod.PARAMS)

# Which parameters belong to which slot variant (for mutation: only live parameters are searched).
SLOT_PARAMS: dict[str, dict[str, tuple[str, ...]]] = {
    'perception': {'ema': ('ema_alpha',)},
    'selection': {'twist': ('angle_scale', 'travel_cost', 'hysteresis'),
                  'staged': ('angle_scale', 'travel_cost', 'hysteresis', 'stage_deg')},
    'approach': {'direct': ('standoff', 'approach_back', 'arrive_tol'),
                 'graph': ('standoff', 'clear_margin', 'waypoint_tol', 'arrive_tol')},
    'fine': {'strokes': ('fine_cov', 'fine_gain', 'fine_min', 'fine_lead')},
    'dither': {'cyclic': ('dither_cov', 'dither_px', 'dither_deg', 'dither_period')},
    'feedback': {'escalate': ('near_miss',)},
}
ALWAYS_LIVE = ('samples_per_edge', 'push_gain', 'push_min', 'push_max', 'switch_cos', 'stall_px',
               'stall_steps', 'retreat_px', 'retreat_steps')

GENOME_TAG = '# GENOME: '


@dataclass
class Genome:
    """A point in the strategy space: a variant per slot and the numeric parameters."""
    slots: dict[str, str] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)

    def full(self) -> Genome:
        slots = {s: self.slots.get(s, next(iter(SLOTS[s]))) for s in SLOT_ORDER}
        params = {k: self.params.get(k, spec[0]) for k, spec in PARAM_SPECS.items()}
        return Genome(slots, {k: clamp_param(k, v) for k, v in params.items()})

    def live_params(self) -> list[str]:
        g = self.full()
        names = list(ALWAYS_LIVE)
        for slot, variant in g.slots.items():
            names.extend(SLOT_PARAMS.get(slot, {}).get(variant, ()))
        return names

    def to_json(self) -> str:
        g = self.full()
        return json.dumps({'slots': g.slots, 'params': g.params}, sort_keys=True, separators=(',', ':'))

    def key(self) -> str:
        """A short hash of the genome (same behaviour -> same key)."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:10]

    def describe_diff(self, other: Genome | None) -> str:
        a = self.full()
        if other is None:
            return ', '.join(f'{s}={v}' for s, v in a.slots.items())
        b = other.full()
        parts = [f'{s}: {b.slots[s]}->{a.slots[s]}' for s in SLOT_ORDER if a.slots[s] != b.slots[s]]
        parts += [f'{k}: {_fmt(b.params[k])}->{_fmt(a.params[k])}' for k in PARAM_SPECS
                  if a.params[k] != b.params[k]]
        return '; '.join(parts) or 'no change'


def _fmt(v) -> str:
    return f'{v:.4g}' if isinstance(v, float) else str(v)


def clamp_param(name: str, value):
    default, lo, hi, kind, _ = PARAM_SPECS[name]
    v = min(max(float(value), lo), hi)
    if kind == 'int':
        return int(round(v))
    return float(f'{v:.5g}')


def default_genome() -> Genome:
    """The strongest composition known to the library (what the search should rediscover)."""
    return Genome({'perception': 'raw', 'selection': 'twist', 'approach': 'graph', 'fine': 'none',
                   'dither': 'cyclic', 'feedback': 'escalate'}, {}).full()


def seed_genome() -> Genome:
    """Where a search from an empty policy starts: the naive pusher (straight approach, no finish)."""
    return Genome({'perception': 'raw', 'selection': 'twist', 'approach': 'direct', 'fine': 'none',
                   'dither': 'none', 'feedback': 'none'}, {}).full()


HEADER = '''"""Push-T policy composed by the ENPIRE offline backend from its strategy library.

Pieces: {pieces}.
"""
import math

import numpy as np

from enpire_task_pusht import policy_tools

'''


def compose(genome: Genome) -> str:
    """The complete policy source for a genome."""
    g = genome.full()
    pieces = ', '.join(f'{s}={g.slots[s]}' for s in SLOT_ORDER)
    lines = [HEADER.format(pieces=pieces), GENOME_TAG + g.to_json() + '\n', 'PARAMS = {\n']
    for k in sorted(g.params):
        lines.append(f'    {k!r}: {g.params[k]!r},\n')
    lines.append('}\n')
    src = ''.join(lines) + geometry.SOURCE
    for slot in SLOT_ORDER:
        src += f'\n# ---- piece: {slot} = {g.slots[slot]}\n' + SLOTS[slot][g.slots[slot]]
    src += '\n# ---- piece: push (state machine)\n' + push.SOURCE
    return src


def genome_from_code(code: str | None) -> Genome | None:
    """Read back the genome of a source written by `compose` (None for foreign code)."""
    if not code:
        return None
    for line in code.splitlines():
        if line.startswith(GENOME_TAG):
            try:
                data = json.loads(line[len(GENOME_TAG):])
                slots = {s: v for s, v in data.get('slots', {}).items() if s in SLOTS and v in SLOTS[s]}
                params = {k: v for k, v in data.get('params', {}).items() if k in PARAM_SPECS}
                return Genome(slots, params).full()
            except (ValueError, TypeError):
                return None
    return None


def check_imports(code: str, allowed: frozenset[str]) -> list[str]:
    """Imports in `code` that are not in `allowed` (the task's, `policy_runtime.allowed_imports`)."""
    bad = []
    for node in ast.walk(parse_source(code)):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name not in allowed]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            subs_ok = all(f'{mod}.{a.name}' in allowed for a in node.names)
            if node.level or (mod not in allowed and not subs_ok):
                bad.append(mod or '.')
    return bad


def mutate_param(name: str, value, rng, scale: float = 1.0):
    """A random step for one parameter within its range (log-normal for 'log', normal otherwise)."""
    default, lo, hi, kind, _ = PARAM_SPECS[name]
    if kind == 'log':
        v = float(value) * math.exp(rng.normal(0.0, 0.35 * scale))
    elif kind == 'int':
        step = max(1.0, 0.25 * (hi - lo) * scale)
        v = float(value) + rng.normal(0.0, step)
    else:
        v = float(value) + rng.normal(0.0, 0.2 * (hi - lo) * scale)
    return clamp_param(name, v)


# The library the offline backend searches is this module (what `Task.strategies` resolves to).
LIBRARY = sys.modules[__name__]
