"""The offline backend: improves Push-T policy code with no network and no model, deterministically.

It composes pieces of the strategy library (`enpire_agents.strategies`) into complete policy sources
and searches that space structurally (which variant fills each slot) and numerically (parameters),
steered by what the request reports:

- no best code yet (an empty policy): the library's naive start (straight approach, no finishing);
- a peer's best beats this agent's best: reuse the peer's policy (its genome is read back from the
  `# GENOME:` line of its code) and revise it -- `parent` is then the peer's node;
- otherwise revise this agent's best: the failure reasons and scores are turned into a diagnosis
  (T dragged / no progress -> approach; angle off -> rotation weight and rotation stage; position off
  -> translation weight; near misses -> finishing stage, dither, failure feedback; exceptions or
  deadlines -> cheaper contact sampling), which orders the structural moves; once the diagnosed moves
  are tried, it mutates 1-3 live parameters, mostly the diagnosis' own.

Every proposal is remembered (by genome hash) and not proposed twice. Randomness comes from one
generator seeded with (seed, agent_id, round), so a run replays exactly. Token counts are the length
of the backend's own prompt and response text divided by 4, so token metrics stay comparable.
"""
from __future__ import annotations

import zlib

import numpy as np

from enpire_agents import strategies as S
from enpire_agents.backends.base import ImprovementRequest, Proposal, TrialSummary

# diagnosis -> (structural moves in order, parameters to mutate)
_PLAYBOOK: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    'drag': ([('approach', 'graph'), ('selection', 'staged')],
             ['clear_margin', 'standoff', 'switch_cos', 'push_max', 'travel_cost', 'waypoint_tol']),
    'angle': ([('selection', 'staged'), ('dither', 'cyclic'), ('fine', 'strokes')],
              ['angle_scale', 'stage_deg', 'dither_deg', 'fine_cov', 'push_gain']),
    'position': ([('dither', 'cyclic'), ('fine', 'strokes')],
                 ['angle_scale', 'push_gain', 'push_min', 'dither_px', 'fine_gain']),
    'near': ([('dither', 'cyclic'), ('feedback', 'escalate'), ('fine', 'strokes'), ('perception', 'ema')],
             ['dither_cov', 'dither_px', 'dither_deg', 'dither_period', 'near_miss', 'fine_cov', 'push_min']),
    'slow': ([('approach', 'graph'), ('fine', 'none')],
             ['push_max', 'push_gain', 'travel_cost', 'hysteresis', 'switch_cos', 'retreat_steps']),
    'crash': ([], ['samples_per_edge']),
}


def _first_moves() -> list[tuple[str, str]]:
    """The playbook's structural moves in order, once each, that change the naive start."""
    naive, moves = S.seed_genome(), []
    for structural, _ in _PLAYBOOK.values():
        moves += [m for m in structural if m not in moves and naive.slots[m[0]] != m[1]]
    return moves


def _team_start(agent_id: str) -> tuple[S.Genome, str]:
    """Where an agent starts from the empty policy. A team spreads its first ideas: agent 0 starts from
    the naive pusher, agent i from the naive pusher with the playbook's i-th structural move, so the
    team's first round covers the library's main branches instead of testing one idea n times; agents
    beyond the moves start from a numeric mutation of the naive pusher."""
    naive = S.seed_genome()
    text = 'start: pose-error pusher (twist-cosine contact choice, straight approach, no finishing stage)'
    try:
        index = int(agent_id.rsplit('_', 1)[-1])
    except ValueError:
        index = 0
    moves = _first_moves()
    if index <= 0:
        return naive, text
    if index > len(moves):
        return naive, f'{text} (team start: mutated)'
    slot, variant = moves[index - 1]
    genome = S.Genome({**naive.slots, slot: variant}, dict(naive.params)).full()
    return genome, f'{text}, but {slot} -> {variant} (team start {index})'


def diagnose(summary: TrialSummary | None) -> list[str]:
    """Failure modes behind a result, most pressing first."""
    if summary is None:
        return ['drag']
    text = ' '.join(summary.failure_reasons).lower()
    out = []
    if any(w in text for w in ('exception', 'deadline', 'error', 'crash')):
        out.append('crash')
    dragged = ('no progress', 'fell', 'far from', 'stuck', 'wall')
    if summary.mean_score < 0.6 or any(w in text for w in dragged):
        out.append('drag')
    if 'angle' in text:
        out.append('angle')
    if 'position' in text:
        out.append('position')
    if any(w in text for w in ('close', 'near', 'not over')) or summary.mean_score >= 0.85:
        out.append('near')
    rate1 = summary.successes_at_1 / max(1, summary.trials)
    ratek = summary.successes_at_k / max(1, summary.trials)
    if ratek - rate1 > 0.1:
        out.append('slow')
    return out or ['near']


def rate(summary: TrialSummary | None) -> tuple[float, float, float]:
    """How good a result is: (pass@1 + pass@k) / 2, then pass@1, then mean score."""
    if summary is None or summary.trials == 0:
        return (-1.0, -1.0, -1.0)
    r1 = summary.successes_at_1 / summary.trials
    rk = summary.successes_at_k / summary.trials
    return ((r1 + rk) / 2.0, r1, summary.mean_score)


class OfflineBackend:
    """`PolicyBackend` with no network: strategy-library composition and search."""

    name = 'offline'

    def __init__(self, seed: int = 0, max_mutations: int = 3):
        self.seed = int(seed)
        self.max_mutations = int(max_mutations)
        self.tried: set[str] = set()
        self.proposals = 0

    # -------------------------------------------------------------------------------------- protocol
    def propose(self, request: ImprovementRequest) -> Proposal:
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, request.seed & 0xFFFFFFFF,
                                     zlib.crc32(request.agent_id.encode()), int(request.round)])
        prompt = self._prompt(request)
        base, parent, reuse = self._base(request)
        if base is None:
            genome, hypothesis = _team_start(request.agent_id)
            if hypothesis.endswith('(team start: mutated)'):     # more agents than first moves
                genome = self._numeric(genome, ['drag'], rng)
            if genome.key() in self.tried:
                genome, hypothesis = self._numeric(genome, ['drag'], rng), 'restart: mutated naive pusher'
        else:
            summary = self._summary_of(request, parent, reuse)
            issues = diagnose(summary)
            genome, why = self._revise(base, issues, rng)
            prefix = f'reuse {parent} and ' if reuse else ''
            hypothesis = f'{prefix}{why} [{", ".join(issues)}]: {genome.describe_diff(base)}'
        self.tried.add(genome.key())
        self.proposals += 1
        code = S.compose(genome)
        hypothesis = hypothesis[:400]
        return Proposal(hypothesis=hypothesis, code=code, parent=parent, regime='heuristic_code',
                        tokens_in=max(1, len(prompt) // 4),
                        tokens_out=max(1, (len(hypothesis) + len(code)) // 4))

    # ------------------------------------------------------------------------------------- internals
    def _base(self, request: ImprovementRequest):
        own = S.genome_from_code(request.best_code)
        own_rate = rate(request.best)
        parent = request.best.node_id if request.best else None
        best_peer = None
        for peer in request.peer_best:
            code = request.peer_code.get(peer.node_id)
            g = S.genome_from_code(code)
            better = best_peer is None or rate(peer) > rate(best_peer[0])
            if g is not None and rate(peer) > own_rate and better:
                best_peer = (peer, g)
        if best_peer is not None:
            return best_peer[1], best_peer[0].node_id, True
        if own is None:
            return None, None, False
        return own, parent, False

    @staticmethod
    def _summary_of(request, parent, reuse):
        if reuse:
            return next((p for p in request.peer_best if p.node_id == parent), None)
        # The latest result tells what the last change did; the best's reasons what still fails.
        best = request.best
        if best is None:
            return request.history[-1] if request.history else None
        reasons = list(best.failure_reasons)
        if request.history and request.history[-1].node_id != best.node_id:
            reasons += [r for r in request.history[-1].failure_reasons if r not in reasons]
        return best.model_copy(update={'failure_reasons': reasons})

    def _revise(self, base: S.Genome, issues: list[str], rng) -> tuple[S.Genome, str]:
        base = base.full()
        for issue in issues:
            for slot, variant in _PLAYBOOK[issue][0]:
                if base.slots[slot] == variant:
                    continue
                cand = S.Genome({**base.slots, slot: variant}, dict(base.params)).full()
                if cand.key() not in self.tried:
                    return cand, f'{slot} -> {variant} for {issue}'
        for _ in range(20):
            cand = self._numeric(base, issues, rng)
            if cand.key() not in self.tried:
                return cand, 'tune parameters'
        # everything nearby was tried: a structural jump at random
        slot = SLOT_NAMES[int(rng.integers(len(SLOT_NAMES)))]
        variants = list(S.SLOTS[slot])
        cand = S.Genome({**base.slots, slot: variants[int(rng.integers(len(variants)))]}, dict(base.params))
        return self._numeric(cand.full(), issues, rng, scale=1.5), f'explore {slot}'

    def _numeric(self, base: S.Genome, issues: list[str], rng, scale: float = 1.0) -> S.Genome:
        base = base.full()
        live = base.live_params()
        focus = [p for i in issues for p in _PLAYBOOK[i][1] if p in live]
        n = int(rng.integers(1, self.max_mutations + 1))
        params = dict(base.params)
        for _ in range(n):
            pool = focus if (focus and rng.random() < 0.7) else live
            name = pool[int(rng.integers(len(pool)))]
            params[name] = S.mutate_param(name, params[name], rng, scale)
        return S.Genome(dict(base.slots), params).full()

    @staticmethod
    def _prompt(request: ImprovementRequest) -> str:
        """The text this backend 'reads' (what an LLM backend would be sent), for token accounting."""
        parts = [f'task: {request.task}', request.contract, f'agent {request.agent_id} round {request.round}']
        if request.best is not None:
            parts.append('best: ' + request.best.model_dump_json())
        if request.best_code:
            parts.append(request.best_code)
        parts += ['history: ' + h.model_dump_json() for h in request.history]
        parts += ['peer: ' + p.model_dump_json() for p in request.peer_best]
        return '\n'.join(parts)


SLOT_NAMES = list(S.SLOT_ORDER)
