"""The offline backend: deterministic, contract-clean proposals that improve over rounds."""
from __future__ import annotations

from enpire_task_pusht import strategies as S
from enpire_task_pusht.strategies import diagnose

from enpire_agents import local_eval
from enpire_agents.backends.base import ImprovementRequest, PolicyBackend, TrialSummary
from enpire_agents.backends.offline import OfflineBackend
from enpire_rollout.policy_runtime import allowed_imports


def _req(**kw):
    base = dict(task='pusht', contract='contract', agent_id='a0', round=0)
    base.update(kw)
    return ImprovementRequest(**base)


def test_protocol_and_first_proposal_from_an_empty_policy():
    b = OfflineBackend(seed=1)
    backend: PolicyBackend = b
    assert backend.name == 'offline' and callable(backend.propose)
    p = b.propose(_req())
    assert p.parent is None and p.code and p.hypothesis
    assert S.check_imports(p.code, allowed_imports('pusht')) == []
    assert p.tokens_in > 0 and p.tokens_out >= len(p.code) // 4
    compile(p.code, '<policy>', 'exec')


def test_deterministic_given_seed():
    best = TrialSummary(node_id='n1', hypothesis='h', trials=10, successes_at_1=2, successes_at_k=5,
                        mean_score=0.7, failure_reasons=['timeout: position ok, angle off 3.0 deg'])
    code = S.compose(S.seed_genome())
    props = [[OfflineBackend(seed=7).propose(_req(round=r, best=best, best_code=code)).code for r in range(4)]
             for _ in range(2)]
    assert props[0] == props[1]


def test_failure_reasons_steer_the_revision():
    drag = TrialSummary(node_id='n1', hypothesis='h', trials=10, successes_at_1=0, successes_at_k=0,
                        mean_score=0.1, failure_reasons=['timeout: far from goal (200 px)'])
    assert diagnose(drag)[0] == 'drag'
    p = OfflineBackend(seed=0).propose(_req(round=1, best=drag, best_code=S.compose(S.seed_genome())))
    assert S.genome_from_code(p.code).slots['approach'] == 'graph'
    assert p.parent == 'n1'


def test_reuses_a_better_peer():
    own = TrialSummary(node_id='mine', hypothesis='h', trials=10, successes_at_1=1, successes_at_k=2,
                       mean_score=0.3)
    peer = TrialSummary(node_id='peer', hypothesis='h', trials=10, successes_at_1=9, successes_at_k=10,
                        mean_score=0.95, failure_reasons=['timeout: close but not over the bar'])
    peer_code = S.compose(S.default_genome())
    p = OfflineBackend(seed=0).propose(_req(round=3, best=own, best_code=S.compose(S.seed_genome()),
                                            peer_best=[peer], peer_code={'peer': peer_code}))
    assert p.parent == 'peer' and p.hypothesis.startswith('reuse peer')
    assert S.genome_from_code(p.code).slots['approach'] == 'graph'


def test_never_proposes_the_same_genome_twice():
    b = OfflineBackend(seed=3)
    best = TrialSummary(node_id='n', hypothesis='h', trials=5, successes_at_1=4, successes_at_k=5,
                        mean_score=0.95)
    code = S.compose(S.default_genome())
    keys = {S.genome_from_code(b.propose(_req(round=r, best=best, best_code=code)).code).key()
            for r in range(12)}
    assert len(keys) == 12


def test_search_improves_over_rounds_on_a_tiny_budget():
    out = local_eval.run_search(OfflineBackend(seed=0), rounds=3, seeds=range(200, 206), attempts=2,
                                perception='gt', task='pusht')
    first, last = out['rounds'][0], out['rounds'][-1]
    assert last['best_pass_at_k'] > first['pass_at_k']
    assert last['best_pass_at_1'] >= 0.5


def test_a_team_spreads_its_first_ideas_over_the_library():
    firsts = [OfflineBackend(seed=0).propose(_req(agent_id=f'agent_{i}')) for i in range(8)]
    genomes = [S.genome_from_code(p.code) for p in firsts]
    assert len({g.key() for g in genomes}) == 8                     # no idea tested twice by the team
    assert genomes[0].key() == S.seed_genome().key()                # agent 0: the naive pusher
    assert genomes[1].slots['approach'] == 'graph' and 'team start 1' in firsts[1].hypothesis
    for g in genomes[1:7]:                                          # one structural move off the naive start
        assert sum(g.slots[k] != v for k, v in S.seed_genome().slots.items()) == 1
    # beyond the library's 6 first moves: a pair of them, one level deeper into the tree
    assert sum(genomes[7].slots[k] != v for k, v in S.seed_genome().slots.items()) == 2
    assert 'team start 7' in firsts[7].hypothesis
    big = {S.genome_from_code(OfflineBackend(seed=0).propose(_req(agent_id=f'agent_{i}')).code).key()
           for i in range(16)}
    assert len(big) == 16                                           # a team of 16 too
    assert all(S.check_imports(p.code, allowed_imports('pusht')) == [] for p in firsts)
