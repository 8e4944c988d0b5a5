"""The peg strategy library: every composition is a policy the sandbox's static check accepts, genomes read
back, the naive start fails where the composed moves succeed, the playbook answers each failure mode, and the
offline backend proposes from the empty policy with no network."""
import itertools

import numpy as np
import pytest
from enpire_task_peg import strategies as lib

from enpire_agents import local_eval
from enpire_agents.backends.base import ImprovementRequest, TrialSummary
from enpire_agents.backends.offline import OfflineBackend
from enpire_rollout.policy_runtime import allowed_imports
from enpire_rollout.sandbox import static_check


def every_genome():
    for variants in itertools.product(*(lib.SLOTS[s] for s in lib.SLOT_ORDER)):
        yield lib.Genome(dict(zip(lib.SLOT_ORDER, variants, strict=True)), {}).full()


def test_every_composition_passes_the_static_check_and_reads_back(peg_task):
    allowed = allowed_imports('peg_insertion')
    keys = set()
    for genome in every_genome():
        code = lib.compose(genome)
        assert static_check(code, allowed) == []
        assert lib.genome_from_code(code) == genome
        keys.add(genome.key())
    assert len(keys) == np.prod([len(v) for v in lib.SLOTS.values()])
    assert lib.genome_from_code('class Policy: pass') is None


def test_parameters_stay_in_their_ranges():
    rng = np.random.default_rng(0)
    for name, (default, low, high, kind, _) in lib.PARAM_SPECS.items():
        value = default
        for _ in range(50):
            value = lib.mutate_param(name, value, rng, scale=3.0)
            assert low <= value <= high and (kind != 'int' or isinstance(value, int))


def test_the_naive_start_fails_where_the_composed_moves_succeed(peg_task):
    seeds = [0, 1, 2]
    naive = local_eval.evaluate(lib.compose(lib.seed_genome()), seeds, attempts=1, distribution='metaworld',
                                task='peg_insertion')
    best = local_eval.evaluate(lib.compose(lib.default_genome()), seeds, attempts=1, distribution='metaworld',
                               task='peg_insertion')
    assert naive.pass_at(1) < 1.0 and best.pass_at(1) == 1.0
    assert any('dropped' in r or 'never grasped' in r for r in naive.failure_reasons())


@pytest.mark.parametrize('reason, mode', [('timeout: peg never grasped (still on the table)', 'grasp'),
                                          ('timeout: peg dropped after it was lifted', 'drop'),
                                          ('timeout: peg held but off the hole axis by 2.5 cm', 'align'),
                                          ('timeout: peg at the mouth but not in (jammed)', 'jam'),
                                          ('exception: ValueError: act() returned nan', 'crash')])
def test_the_playbook_answers_each_failure_mode(reason, mode):
    summary = TrialSummary(node_id='n', hypothesis='h', trials=8, successes_at_1=4, successes_at_k=4,
                           mean_score=0.5, failure_reasons=[reason])
    modes = lib.diagnose(summary)
    assert mode in modes
    moves, params = lib.PLAYBOOK[mode]
    assert all(variant in lib.SLOTS[slot] for slot, variant in moves)
    assert set(params) <= set(lib.PARAM_SPECS)
    assert lib.diagnose(None) == [lib.START_ISSUE]


def test_the_offline_backend_starts_from_the_naive_start_and_follows_the_diagnosis(peg_task):
    backend = OfflineBackend(seed=0)
    request = ImprovementRequest(task='peg_insertion', contract='', agent_id='agent_0', round=0)
    first = backend.propose(request)
    assert lib.genome_from_code(first.code) == lib.seed_genome()
    failed = TrialSummary(node_id='n0', hypothesis=first.hypothesis, trials=8, successes_at_1=1,
                          successes_at_k=1, mean_score=0.3,
                          failure_reasons=['timeout: peg dropped after it was lifted'])
    second = backend.propose(request.model_copy(update={'round': 1, 'best_code': first.code, 'best': failed,
                                                        'history': [failed]}))
    genome = lib.genome_from_code(second.code)
    assert genome.slots['grasp'] == 'settle' and second.parent == 'n0'
    peer = backend.propose(request.model_copy(update={'agent_id': 'agent_1'}))
    assert lib.genome_from_code(peer.code) != lib.seed_genome()        # a team spreads its first ideas


def _cell_rollout(seed, score, reason, success=False):
    from enpire_rollout.trial_outcome import TrialOutcome
    return TrialOutcome(seed=seed, attempts=2, attempts_used=1 if success else 2,
                        attempt_scores=[1.0] if success else [score, score],
                        attempt_successes=[True] if success else [False, False],
                        attempt_reasons=['success'] if success else [reason, reason])


def _summary(rollouts, node_id='n0'):
    wins = sum(r.success for r in rollouts)
    return TrialSummary(node_id=node_id, hypothesis='h', trials=len(rollouts), successes_at_1=wins,
                        successes_at_k=wins,
                        mean_score=float(np.mean([r.best_score for r in rollouts])),
                        failure_reasons=sorted({r.attempt_reasons[-1] for r in rollouts if not r.success}),
                        rollouts=rollouts)


def test_the_diagnosis_reads_a_cells_camera_verdicts_by_how_far_the_head_was():
    # the cell's cameras say 'outside_window' (score = window radius / distance) or that they could not
    # locate the peg; a peg left on the table scores ~0.25: never carried
    far = _summary([_cell_rollout(0, 0.26, 'outside_window'), _cell_rollout(1, 1.0, '', success=True),
                    _cell_rollout(2, 0.0, 'not_located: 0 view(s) measured the peg')])
    assert lib.diagnose(far)[:2] == ['grasp', 'drop']
    near = _summary([_cell_rollout(0, 0.7, 'near_threshold'), _cell_rollout(1, 0.6, 'outside_window')])
    modes = lib.diagnose(near)
    assert 'align' in modes and 'grasp' not in modes and 'drop' not in modes


def test_while_nothing_succeeds_the_backend_takes_a_modes_moves_together(peg_task):
    backend = OfflineBackend(seed=0)
    request = ImprovementRequest(task='peg_insertion', contract='', agent_id='agent_0', round=0)
    first = backend.propose(request)
    nothing = _summary([_cell_rollout(0, 0.26, 'outside_window'), _cell_rollout(1, 0.0, 'not_located')])
    second = backend.propose(request.model_copy(update={'round': 1, 'best_code': first.code, 'best': nothing,
                                                        'history': [nothing]}))
    genome = lib.genome_from_code(second.code)
    assert (genome.slots['approach'], genome.slots['grasp']) == ('hover', 'settle')
    assert genome.slots == {**lib.seed_genome().slots, 'approach': 'hover', 'grasp': 'settle'}
    # once some rollout succeeds, one move at a time again (so a result says which move it was)
    some = _summary([_cell_rollout(0, 0.26, 'outside_window'), _cell_rollout(1, 1.0, '', success=True)],
                    node_id='n1')
    third = OfflineBackend(seed=0).propose(request.model_copy(update={
        'round': 2, 'best_code': first.code, 'best': some, 'history': [some]}))
    naive = lib.seed_genome().slots
    changed = [s for s, v in lib.genome_from_code(third.code).slots.items() if v != naive[s]]
    assert len(changed) == 1
