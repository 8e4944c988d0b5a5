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

import sys

from enpire_agents.backends.strategy_genome import StrategyGenome, StrategySpace
from enpire_task_peg.strategies import pieces
from enpire_task_peg.strategies.playbook import (  # noqa: F401
    COMBINE_MOVES_WHILE_FAILING,
    PLAYBOOK,
    START_ISSUE,
    START_TEXT,
    diagnose,
)

SLOTS: dict[str, dict[str, str]] = {
    'approach': pieces.APPROACH,
    'grasp': pieces.GRASP,
    'transport': pieces.TRANSPORT,
    'insert': pieces.INSERT,
    'feedback': pieces.FEEDBACK,
}
SLOT_ORDER = ('approach', 'grasp', 'transport', 'insert', 'feedback')
PARAM_SPECS = pieces.PARAMS
SPACE = StrategySpace(SLOTS, SLOT_ORDER, PARAM_SPECS, pieces.SLOT_PARAMS, pieces.ALWAYS_LIVE)


class Genome(StrategyGenome):
    """A point in the strategy space: a variant per slot and the numeric parameters."""

    space = SPACE


clamp_param = SPACE.clamp
mutate_param = SPACE.mutate
genome_from_code = Genome.from_code


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
             g.tag_line(), 'PARAMS = {\n']
    lines += [f'    {k!r}: {g.params[k]!r},\n' for k in sorted(g.params)]
    lines.append('}\n')
    source = ''.join(lines) + pieces.CORE
    for slot in SLOT_ORDER:
        source += f'\n# ---- piece: {slot} = {g.slots[slot]}\n' + SLOTS[slot][g.slots[slot]]
    return source


# The library the offline backend searches is this module (what `Task.strategies` resolves to).
LIBRARY = sys.modules[__name__]
