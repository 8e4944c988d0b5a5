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
import sys

from enpire_agents.backends.strategy_genome import StrategyGenome, StrategySpace
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

SPACE = StrategySpace(SLOTS, SLOT_ORDER, PARAM_SPECS, SLOT_PARAMS, ALWAYS_LIVE)


class Genome(StrategyGenome):
    """A point in the strategy space: a variant per slot and the numeric parameters."""

    space = SPACE


clamp_param = SPACE.clamp
mutate_param = SPACE.mutate
genome_from_code = Genome.from_code


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
    lines = [HEADER.format(pieces=pieces), g.tag_line(), 'PARAMS = {\n']
    for k in sorted(g.params):
        lines.append(f'    {k!r}: {g.params[k]!r},\n')
    lines.append('}\n')
    src = ''.join(lines) + geometry.SOURCE
    for slot in SLOT_ORDER:
        src += f'\n# ---- piece: {slot} = {g.slots[slot]}\n' + SLOTS[slot][g.slots[slot]]
    src += '\n# ---- piece: push (state machine)\n' + push.SOURCE
    return src


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


# The library the offline backend searches is this module (what `Task.strategies` resolves to).
LIBRARY = sys.modules[__name__]
