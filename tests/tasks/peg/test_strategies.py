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
