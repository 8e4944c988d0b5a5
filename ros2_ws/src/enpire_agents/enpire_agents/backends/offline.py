"""The offline backend: improves policy code with no network and no model, deterministically.

It composes pieces of the task's strategy library (`Task.strategies`) into complete policy sources and
searches that space structurally (which variant fills each slot) and numerically (parameters), steered
by what the request reports:

- no best code yet (an empty policy): the library's naive start (`seed_genome`), or for agent i of a
  team the naive start with the playbook's i-th structural move (beyond the moves: a pair of them);
- a peer's best beats this agent's best: reuse the peer's policy (its genome is read back from the
  `# GENOME:` line of its code) and revise it -- `parent` is then the peer's node;
- otherwise revise this agent's best: the library's `diagnose` turns the failure reasons and scores
  into failure modes, and its `PLAYBOOK` orders the structural moves for each (a library that sets
  `COMBINE_MOVES_WHILE_FAILING` gets a mode's moves together while no rollout succeeds); once the
  diagnosed moves are tried, it mutates 1-3 live parameters, mostly the diagnosis' own.

A strategy library (a module or namespace) gives: `Genome`, `SLOTS`, `SLOT_ORDER`, `seed_genome()`,
`compose(genome)`, `genome_from_code(code)`, `mutate_param(name, value, rng, scale)`, `PLAYBOOK`,
`START_ISSUE`, `START_TEXT` and `diagnose(summary)`.

Every proposal is remembered (by genome hash) and not proposed twice, and neither is an idea the team
already holds (`request.team_ideas`: tested, or claimed by a peer whose trials are running; compared by
the code's hash). A structural move a peer has taken is not repeated but built on: the agent stacks one
more move of the library on it, so a team's agents test different ideas in the same round and a lone
agent searches as before. Randomness comes from one generator seeded with (seed, agent_id, round), so a
run replays exactly. Token counts are the length
of the backend's own prompt and response text divided by 4, so token metrics stay comparable.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from enpire_common import task_registry

from enpire_agents.backends.base import ImprovementRequest, Proposal, TrialSummary, code_sha256


def strategy_library(task: str) -> Any:
    """The offline backend's strategy library of `task` (`UnknownTask` when none is installed)."""
    return task_registry.get(task).load('strategies')


def _first_moves(lib, base=None) -> list[tuple[str, str]]:
    """The playbook's structural moves in order, once each, that change `base` (the naive start)."""
    base, moves = base or lib.seed_genome(), []
    for structural, _ in lib.PLAYBOOK.values():
        moves += [m for m in structural if m not in moves and base.slots[m[0]] != m[1]]
    return moves


def _team_start(lib, agent_id: str):
    """Where an agent starts from the empty policy. A team spreads its first ideas over the library's
    branches: agent 0 starts from the naive start, agent i from the naive start with the playbook's i-th
    structural move, the agents beyond the moves from a pair of them (in playbook order), so the team's
    first round covers the library's main branches, one level deeper as the team grows, instead of
    testing one idea n times; agents beyond the pairs start from a numeric mutation of the naive start."""
    naive = lib.seed_genome()
    text = lib.START_TEXT
    try:
        index = int(agent_id.rsplit('_', 1)[-1])
    except ValueError:
        index = 0
    moves = _first_moves(lib)
    pairs = [(a, b) for i, a in enumerate(moves) for b in moves[i + 1:] if a[0] != b[0]]
    if index <= 0:
        return naive, text
    if index > len(moves) + len(pairs):
        return naive, f'{text} (team start: mutated)'
    chosen = [moves[index - 1]] if index <= len(moves) else list(pairs[index - 1 - len(moves)])
    genome = lib.Genome({**naive.slots, **dict(chosen)}, dict(naive.params)).full()
    change = ' and '.join(f'{slot} -> {variant}' for slot, variant in chosen)
    return genome, f'{text}, but {change} (team start {index})'


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
        lib = strategy_library(request.task)
        prompt = self._prompt(request)
        base, parent, reuse = self._base(lib, request)
        taken = {idea.code_sha256 for idea in request.team_ideas}     # the team's ideas, tested or claimed
        if base is None:
            genome, hypothesis = _team_start(lib, request.agent_id)
            if hypothesis.endswith('(team start: mutated)'):     # more agents than first moves and pairs
                genome = self._numeric(lib, genome, [lib.START_ISSUE], rng)
            if not self._free(lib, genome, taken):
                genome, why = self._revise(lib, lib.seed_genome(), [lib.START_ISSUE], rng, taken)
                hypothesis = f'restart: {why}'
        else:
            summary = self._summary_of(request, parent, reuse)
            issues = lib.diagnose(summary)
            # a library may ask for bold steps while nothing succeeds: the first mode's moves at once
            bold = bool(getattr(lib, 'COMBINE_MOVES_WHILE_FAILING', False)) and summary is not None \
                and summary.trials > 0 and summary.successes_at_k == 0
            genome, why = self._revise(lib, base, issues, rng, taken, bold=bold)
            prefix = f'reuse {parent} and ' if reuse else ''
            hypothesis = f'{prefix}{why} [{", ".join(issues)}]: {genome.describe_diff(base)}'
        self.tried.add(genome.key())
        self.proposals += 1
        code = lib.compose(genome)
        hypothesis = hypothesis[:400]
        return Proposal(hypothesis=hypothesis, code=code, parent=parent, regime='heuristic_code',
                        tokens_in=max(1, len(prompt) // 4),
                        tokens_out=max(1, (len(hypothesis) + len(code)) // 4))

    # ------------------------------------------------------------------------------------- internals
    def _base(self, lib, request: ImprovementRequest):
        own = lib.genome_from_code(request.best_code)
        own_rate = rate(request.best)
        parent = request.best.node_id if request.best else None
        best_peer = None
        for peer in request.peer_best:
            code = request.peer_code.get(peer.node_id)
            g = lib.genome_from_code(code)
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

    def _revise(self, lib, base, issues: list[str], rng, taken: frozenset[str] | set[str] = frozenset(),
                bold: bool = False) -> tuple[Any, str]:
        """The next idea from `base`: the diagnosed structural moves in playbook order (`bold`: first all
        moves of the most pressing mode that has some left, at once); a move the team already holds gets
        one more library move stacked on it (the peer tests the move, this agent the move and the next);
        then 1-3 parameter mutations; then a structural jump at random. Nothing the agent proposed before
        or the team holds (`taken`: code hashes) is proposed."""
        base = base.full()
        if bold:
            for issue in issues:
                moves = dict(m for m in lib.PLAYBOOK[issue][0] if base.slots[m[0]] != m[1])
                if len(moves) < 2:
                    continue
                cand = lib.Genome({**base.slots, **moves}, dict(base.params)).full()
                if self._free(lib, cand, taken):
                    change = ' and '.join(f'{slot} -> {variant}' for slot, variant in moves.items())
                    return cand, f'{change} at once for {issue} (nothing succeeds yet)'
                break
        held = []                                           # moves a peer has taken: build on them
        for issue in issues:
            for slot, variant in lib.PLAYBOOK[issue][0]:
                if base.slots[slot] == variant:
                    continue
                cand = lib.Genome({**base.slots, slot: variant}, dict(base.params)).full()
                if self._free(lib, cand, taken):
                    return cand, f'{slot} -> {variant} for {issue}'
                if cand.key() not in self.tried and (slot, variant, issue) not in held:
                    held.append((slot, variant, issue))
        for slot, variant, issue in held:
            for slot2, variant2 in _first_moves(lib, base):
                if slot2 == slot:
                    continue
                cand = lib.Genome({**base.slots, slot: variant, slot2: variant2}, dict(base.params)).full()
                if self._free(lib, cand, taken):
                    return cand, f'{slot} -> {variant} for {issue} (a peer\'s) and {slot2} -> {variant2}'
        for _ in range(20):
            cand = self._numeric(lib, base, issues, rng)
            if self._free(lib, cand, taken):
                return cand, 'tune parameters'
        # everything nearby was tried: a structural jump at random
        slot_names = list(lib.SLOT_ORDER)
        slot = slot_names[int(rng.integers(len(slot_names)))]
        variants = list(lib.SLOTS[slot])
        cand = lib.Genome({**base.slots, slot: variants[int(rng.integers(len(variants)))]}, dict(base.params))
        return self._numeric(lib, cand.full(), issues, rng, scale=1.5), f'explore {slot}'

    def _free(self, lib, genome, taken) -> bool:
        """Neither proposed by this agent before nor held by the team (tested, or claimed by a peer)."""
        return genome.key() not in self.tried and (not taken or code_sha256(lib.compose(genome)) not in taken)

    def _numeric(self, lib, base, issues: list[str], rng, scale: float = 1.0):
        base = base.full()
        live = base.live_params()
        focus = [p for i in issues for p in lib.PLAYBOOK[i][1] if p in live]
        n = int(rng.integers(1, self.max_mutations + 1))
        params = dict(base.params)
        for _ in range(n):
            pool = focus if (focus and rng.random() < 0.7) else live
            name = pool[int(rng.integers(len(pool)))]
            params[name] = lib.mutate_param(name, params[name], rng, scale)
        return lib.Genome(dict(base.slots), params).full()

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
        parts += [f'team: {i.agent}: {i.hypothesis} -> '
                  f'{"testing" if i.result is None else f"{i.result.successes_at_k}/{i.result.trials}"}'
                  for i in request.team_ideas]
        return '\n'.join(parts)

