"""A team's agents test different ideas: first ideas spread over the strategy library, and a later idea
steers clear of what the team's shared tree holds (tested, or claimed by a peer testing it now).
Pure: the offline backend on Push-T's strategy library, a scripted cell (no rclpy, no simulator)."""
import threading

from enpire_task_pusht import strategies as S

from enpire_agents.backends.base import ImprovementRequest, TeamIdea, TrialSummary, code_sha256
from enpire_agents.backends.offline import OfflineBackend
from enpire_agents.experiment import load_experiment
from enpire_agents.metrics import CellTime
from enpire_agents.team import Team, make_backend
from enpire_rollout.trial_outcome import TrialOutcome


class GenomeCell:
    """A scripted Push-T cell: the graph approach reaches the T, and with the cyclic dither or the
    escalating feedback it is placed on the first attempt; the graph alone needs a second attempt on
    every other seed; without it the T is dragged and every attempt fails."""

    def __init__(self, gate: int = 0):
        self.lock = threading.Condition()
        self.tested: list[tuple[str, str]] = []          # (label, genome key), in the order asked
        self.gate = gate     # no result before this many agents have asked (a team starting at once)

    def run(self, code, seeds, *, distribution, attempts, steps_per_attempt, label, record=None, stop=None):
        g = S.genome_from_code(code)
        with self.lock:
            self.tested.append((label, g.key()))
            self.lock.notify_all()
            assert self.lock.wait_for(lambda: len({t[0].split('#')[0] for t in self.tested}) >= self.gate,
                                      timeout=60), 'the team did not start together'
        out = []
        for seed in seeds:
            if g.slots['approach'] != 'graph':
                first, score, reason = None, 0.2, 'timeout: far from goal (200 px)'
            elif g.slots['dither'] == 'cyclic' or g.slots['feedback'] == 'escalate':
                first, score, reason = 1, 0.97, ''
            else:
                first, score, reason = (1 if seed % 2 else 2), 0.95, 'timeout: close but not over the bar'
            n = first or attempts
            out.append(TrialOutcome(seed=seed, attempts=attempts, attempt_scores=[score] * n,
                                    attempt_successes=[i + 1 == first for i in range(n)],
                                    attempt_reasons=[reason] * n, execute_s=1.0, reset_s=0.1))
        return out

    def cell_times(self):
        return [CellTime(cell='cell_0', wall_s=1.0, execute_s=1.0)]

    def close(self):
        pass


def _config(size, rounds=8):
    return load_experiment({
        'name': 'team_diversity', 'task': 'pusht', 'team': {'size': size, 'patience': 2},
        'budgets': {'wall_clock_s': 120, 'trials': 1000},
        'success_bar': {'k': 8, 'pass_at_k': 0.95, 'pass_at_1': 0.8, 'held_out_confirmation': False},
        'improvement': {'seeds': {'start': 0, 'count': 200}, 'trials_per_node': 4, 'max_rounds': rounds},
        'evaluation': {'seeds': {'start': 10000, 'count': 100}}})


def _request(agent, **kw):
    return ImprovementRequest(task='pusht', contract='', agent_id=agent, round=kw.pop('round', 1), **kw)


def test_no_two_agents_of_a_team_of_8_start_from_the_same_idea(tmp_path):
    cell = GenomeCell(gate=8)                  # as on the cells: nobody knows a result before all start
    team = Team(_config(8, rounds=1), cell, tmp_path)
    result = team.run()
    firsts = {}
    for label, key in cell.tested:
        firsts.setdefault(label.split('#')[0], key)
    assert sorted(firsts) == [f'agent_{i}' for i in range(8)], result.stop_reason
    assert len(set(firsts.values())) == 8, firsts       # the library has 6 first moves and the naive start
    assert len({n.node_id for n in result.nodes}) == 8


def test_an_idea_a_peer_is_testing_is_not_proposed_again_but_built_on():
    drag = TrialSummary(node_id='naive', hypothesis='start', trials=2, successes_at_1=0, successes_at_k=0,
                        mean_score=0.2, failure_reasons=['timeout: far from goal (200 px)'])
    naive = S.compose(S.seed_genome())
    alone = OfflineBackend(seed=5).propose(_request('agent_0', best=drag, best_code=naive))
    assert S.genome_from_code(alone.code).slots['approach'] == 'graph'     # the playbook's answer to drag
    # agent_1 is testing exactly that idea: agent_0 tests another one from the same diagnosis
    claim = TeamIdea(agent='agent_1', hypothesis='approach -> graph', code_sha256=code_sha256(alone.code))
    steered = OfflineBackend(seed=5).propose(_request('agent_0', best=drag, best_code=naive,
                                                      team_ideas=[claim]))
    assert code_sha256(steered.code) != code_sha256(alone.code)
    assert S.genome_from_code(steered.code).slots['selection'] == 'staged'   # the next move for drag
    # both answers to drag taken by peers: the agent stacks a further move on a peer's move
    second = TeamIdea(agent='agent_2', hypothesis='selection -> staged',
                      code_sha256=code_sha256(steered.code))
    stacked = OfflineBackend(seed=5).propose(_request('agent_0', best=drag, best_code=naive,
                                                      team_ideas=[claim, second]))
    g = S.genome_from_code(stacked.code)
    moved = [s for s, v in S.seed_genome().slots.items() if g.slots[s] != v]
    assert g.slots['approach'] == 'graph' and len(moved) == 2
    assert code_sha256(stacked.code) not in {claim.code_sha256, second.code_sha256}
    assert "a peer's" in stacked.hypothesis


def test_agents_revising_one_best_never_propose_what_the_team_holds():
    best = TrialSummary(node_id='peer', hypothesis='graph', trials=4, successes_at_1=2, successes_at_k=4,
                        mean_score=0.95, failure_reasons=['timeout: close but not over the bar'])
    code = S.compose(S.Genome({**S.seed_genome().slots, 'approach': 'graph'}, {}).full())
    held: list[TeamIdea] = []
    backends = {f'agent_{i}': OfflineBackend(seed=i) for i in range(8)}
    for round in (2, 3):
        for agent, backend in backends.items():   # each agent sees the team's ideas so far, claims included
            p = backend.propose(_request(agent, round=round, peer_best=[best], peer_code={'peer': code},
                                         team_ideas=list(held)))
            assert code_sha256(p.code) not in {i.code_sha256 for i in held}, (agent, round, p.hypothesis)
            held.append(TeamIdea(agent=agent, hypothesis=p.hypothesis, code_sha256=code_sha256(p.code)))
    assert len({i.code_sha256 for i in held}) == 16


class _Spy:
    """The offline backend, recording its requests; agent_1's second request is signalled."""

    def __init__(self, backend, asked):
        self.backend, self.asked, self.requests, self.proposals = backend, asked, [], []
        self.name = backend.name

    def propose(self, request):
        self.requests.append(request)
        if request.agent_id == 'agent_1' and request.round == 2:
            self.asked.set()
        self.proposals.append(self.backend.propose(request))
        return self.proposals[-1]


def test_the_team_hands_each_agent_its_peers_claims(tmp_path):
    """agent_0's first idea stays on the cell until agent_1 has asked for its second one: agent_1's request
    carries agent_0's idea as a claim (no result yet), and its own tested first idea with its result."""
    asked = threading.Event()
    cell = GenomeCell()
    plain = cell.run

    def run(code, seeds, **kw):
        if kw['label'] == 'agent_0#1':
            assert asked.wait(60), 'agent_1 never asked for its second idea'
        return plain(code, seeds, **kw)

    cell.run = run
    config = _config(2, rounds=2)
    spies = [_Spy(make_backend(spec, i, config.seed), asked)
             for i, spec in enumerate(config.team.agent_specs())]
    Team(config, cell, tmp_path, backends=spies).run()
    second = next(r for r in spies[1].requests if r.round == 2)
    claims = [i for i in second.team_ideas if i.result is None]
    assert [c.agent for c in claims] == ['agent_0']
    assert claims[0].code_sha256 == code_sha256(spies[0].proposals[0].code)
    tested = [i for i in second.team_ideas if i.result is not None]
    assert [i.agent for i in tested] == ['agent_1'] and tested[0].result.trials > 0


def test_a_team_of_4_reaches_the_bar_with_diversified_ideas(tmp_path):
    cell = GenomeCell()
    result = Team(_config(4), cell, tmp_path).run()
    assert result.stop_reason.startswith('success bar met'), result.stop_reason
    ideas = dict(cell.tested)                  # one idea per label (agent#round), tested in chunks
    assert len(set(ideas.values())) == len(ideas), f'the team tested an idea twice: {ideas}'
    best = S.genome_from_code(result.best_code)
    assert best.slots['approach'] == 'graph' and 'cyclic' in best.slots['dither'] + best.slots['feedback'] \
        or best.slots['feedback'] == 'escalate'
    assert any(n.pass_at_1 >= 0.8 and n.pass_at_k >= 0.95 for n in result.nodes)
