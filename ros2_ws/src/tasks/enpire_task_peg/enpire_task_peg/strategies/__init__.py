"""The offline backend's strategy library for peg insertion (`Task.strategies` names this module as
`LIBRARY`): parametrised pieces (approach, grasp, lift and align, insert, back off and retry; `pieces.py`)
composed into complete policy sources.

A policy is described by a `Genome`: one variant per slot plus numeric parameters. `compose(genome)` writes
the policy source: imports, a `PARAMS` literal, a `# GENOME:` line (so a policy written here reads back with
`genome_from_code`), the state machine and the chosen pieces. How a result steers the search (failure modes,
the moves that answer them, the start): `playbook.py`. The interface is the one `enpire_agents.backends.
offline` documents.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass, field

from enpire_task_peg.strategies import pieces
from enpire_task_peg.strategies.playbook import PLAYBOOK, START_ISSUE, START_TEXT, diagnose  # noqa: F401

SLOTS: dict[str, dict[str, str]] = {
    'approach': pieces.APPROACH,
    'grasp': pieces.GRASP,
    'transport': pieces.TRANSPORT,
    'insert': pieces.INSERT,
    'feedback': pieces.FEEDBACK,
}
SLOT_ORDER = ('approach', 'grasp', 'transport', 'insert', 'feedback')
PARAM_SPECS = pieces.PARAMS
GENOME_TAG = '# GENOME: '


@dataclass
class Genome:
    """A point in the strategy space: a variant per slot and the numeric parameters."""

    slots: dict[str, str] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)

    def full(self) -> Genome:
        slots = {s: self.slots.get(s, next(iter(SLOTS[s]))) for s in SLOT_ORDER}
        params = {k: clamp_param(k, self.params.get(k, spec[0])) for k, spec in PARAM_SPECS.items()}
        return Genome(slots, params)

    def live_params(self) -> list[str]:
        g = self.full()
        names = list(pieces.ALWAYS_LIVE)
        for slot, variant in g.slots.items():
            names += [p for p in pieces.SLOT_PARAMS.get(slot, {}).get(variant, ()) if p not in names]
        return names

    def to_json(self) -> str:
        g = self.full()
        return json.dumps({'slots': g.slots, 'params': g.params}, sort_keys=True, separators=(',', ':'))

    def key(self) -> str:
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:10]

    def describe_diff(self, other: Genome | None) -> str:
        a = self.full()
        if other is None:
            return ', '.join(f'{s}={v}' for s, v in a.slots.items())
        b = other.full()
        parts = [f'{s}: {b.slots[s]}->{a.slots[s]}' for s in SLOT_ORDER if a.slots[s] != b.slots[s]]
        parts += [f'{k}: {b.params[k]:.4g}->{a.params[k]:.4g}' for k in PARAM_SPECS
                  if a.params[k] != b.params[k]]
        return '; '.join(parts) or 'no change'


def clamp_param(name: str, value) -> float | int:
    _, low, high, kind, _ = PARAM_SPECS[name]
    v = min(max(float(value), low), high)
    return int(round(v)) if kind == 'int' else float(f'{v:.5g}')


def mutate_param(name: str, value, rng, scale: float = 1.0):
    """A random step for one parameter within its range (log-normal for 'log', normal otherwise)."""
    _, low, high, kind, _ = PARAM_SPECS[name]
    if kind == 'log':
        return clamp_param(name, float(value) * math.exp(rng.normal(0.0, 0.35 * scale)))
    spread = max(1.0, 0.25 * (high - low) * scale) if kind == 'int' else 0.2 * (high - low) * scale
    return clamp_param(name, float(value) + rng.normal(0.0, spread))


def seed_genome() -> Genome:
    """Where a search from the empty policy starts: the naive pick-and-place (straight moves; it closes the
    gripper once roughly there and goes on at once; a push to the mouth; nothing learnt from a failure)."""
    return Genome({'approach': 'direct', 'grasp': 'timed', 'transport': 'direct', 'insert': 'push',
                   'feedback': 'none'}, {'close_steps': 2, 'reach_tol': 0.03}).full()


def default_genome() -> Genome:
    """The strongest composition the library knows (what the search should find)."""
    return Genome({'approach': 'hover', 'grasp': 'settle', 'transport': 'lift_first', 'insert': 'search',
                   'feedback': 'retry'}, {}).full()


def compose(genome: Genome) -> str:
    """The complete policy source for a genome."""
    g = genome.full()
    lines = [pieces.HEADER.format(pieces=', '.join(f'{s}={g.slots[s]}' for s in SLOT_ORDER)),
             GENOME_TAG + g.to_json() + '\n', 'PARAMS = {\n']
    lines += [f'    {k!r}: {g.params[k]!r},\n' for k in sorted(g.params)]
    lines.append('}\n')
    source = ''.join(lines) + pieces.CORE
    for slot in SLOT_ORDER:
        source += f'\n# ---- piece: {slot} = {g.slots[slot]}\n' + SLOTS[slot][g.slots[slot]]
    return source


def genome_from_code(code: str | None) -> Genome | None:
    """The genome of a source written by `compose` (None for foreign code)."""
    for line in (code or '').splitlines():
        if line.startswith(GENOME_TAG):
            try:
                data = json.loads(line[len(GENOME_TAG):])
                slots = {s: v for s, v in data.get('slots', {}).items() if s in SLOTS and v in SLOTS[s]}
                params = {k: v for k, v in data.get('params', {}).items() if k in PARAM_SPECS}
                return Genome(slots, params).full()
            except (ValueError, TypeError, AttributeError):
                return None
    return None


# The library the offline backend searches is this module (what `Task.strategies` resolves to).
LIBRARY = sys.modules[__name__]
