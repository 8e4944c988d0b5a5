"""The offline backend in the tool-driven shape: the same tools an LLM agent or an MCP client gets.

One session per round, no network and no model: read the tree (`tree`, `read_policy`) and the budget,
choose what to build on (its own best; a peer's clearly better node, or when its own line stopped
improving), write the next idea with the offline backend's strategy search (`OfflineBackend.propose`),
commit it (`propose_policy`: the static checks run first), test it in chunks (`run_trial`, stopping once
it cannot beat its base), look at a failed trial (`get_trial`) and keep it or `discard` it. Tokens are
its own count (prompt and tool texts read, code written, divided by 4), as for `OfflineBackend`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from enpire_agents import metrics
from enpire_agents.backends.base import ImprovementRequest, TeamIdea, TrialSummary
from enpire_agents.backends.offline import OfflineBackend
from enpire_agents.cell_tools import CellToolbox, ToolResult


class OfflineToolAgent:
    name = 'offline'
    tool_driven = True
    images = False

    def __init__(self, seed: int = 0, patience: int = 3, reuse_margin: float = 0.05, worse_by: float = 0.25):
        self.writer = OfflineBackend(seed=seed)
        self.seed = seed
        self.patience, self.reuse_margin, self.worse_by = patience, reuse_margin, worse_by
        self.base: dict[str, Any] | None = None       # the node (tree line) this agent builds on
        self.stale = 0                                # non-improving ideas since `base`

    def session(self, tools: CellToolbox, round: int, stop: Callable[[], bool] = lambda: False) -> str:
        read = _Reader(tools)
        budget = read('budget').data
        if not budget:
            return 'no budget answer'
        tree = read('tree').data
        nodes = {n['node_id']: n for n in tree['nodes']}
        me = tree['you']
        self._choose_base(tools, me, tree, nodes)
        own = [n for n in tree['nodes'] if n['agent'] == me and 'trials' in n][-6:]
        peers = [nodes[b] for a, b in tree['best'].items() if a != me and b in nodes]
        base_code = read('read_policy', node_id=self.base['node_id']).data.get('code') if self.base else None
        peer_code = {p['node_id']: read('read_policy', node_id=p['node_id']).data.get('code', '')
                     for p in peers}
        request = ImprovementRequest(
            task=budget['task'], contract='', agent_id=me, round=round, best_code=base_code,
            best=_summary(self.base) if self.base else None, history=[_summary(n) for n in own],
            peer_best=[_summary(p) for p in peers], peer_code=peer_code, seed=self.seed * 100_003 + round,
            # the shared tree: every idea, tested or proposed and under test by its agent (a claim)
            team_ideas=[TeamIdea(agent=n['agent'], hypothesis=n['hypothesis'], code_sha256=n['code_sha256'],
                                 result=_summary(n) if 'trials' in n else None)
                        for n in tree['nodes'] if n.get('code_sha256')])
        proposal = self.writer.propose(request)
        tools.spend_tokens(read.tokens_since() + proposal.tokens_in, proposal.tokens_out)
        committed = tools.propose_policy(proposal.code, proposal.hypothesis, parent=proposal.parent)
        if not committed.ok:
            self.stale += 1
            return f'refused: {committed.text}'
        node = self._test(read, committed.data['node_id'], budget, stop)
        tools.spend_tokens(read.tokens_since(), 0)
        if node is None:
            return 'no rollout ran'
        if self.base is None or node['score'] > self.base['score']:
            self.base, self.stale = node, 0
            return f'keep {node["node_id"][:7]}: {node["result"]}'
        self.stale += 1
        if node['score'] < self.base['score'] - self.worse_by:
            tools.discard(node['node_id'], f'worse than {self.base["node_id"][:7]} ({node["result"]})')
            return f'discard {node["node_id"][:7]}: {node["result"]}'
        return f'revise {node["node_id"][:7]}: {node["result"]}'

    def _choose_base(self, tools: CellToolbox, me: str, tree: dict, nodes: dict) -> None:
        """Reuse a peer's clearly better node, or one after this line stopped improving; prune a dead line."""
        if self.base is not None:
            self.base = nodes.get(self.base['node_id'], self.base)
        peers = [nodes[b] for a, b in tree['best'].items() if a != me and b in nodes]
        peer = max(peers, key=lambda n: n['score'], default=None)
        stuck = self.stale >= self.patience
        if peer is not None and (self.base is None or peer['score'] > self.base['score'] + self.reuse_margin
                                 or stuck):
            if self.base is not None and stuck:
                self._prune_since(tools, me, tree, f'reusing {peer["agent"]} {peer["node_id"][:7]}')
            self.base, self.stale = peer, 0
        elif self.base is not None and self.stale >= 2 * self.patience:
            self._prune_since(tools, me, tree, 'no peer to reuse')
            self.stale = 0

    def _prune_since(self, tools: CellToolbox, me: str, tree: dict, why: str) -> None:
        ids = [n['node_id'] for n in tree['nodes']]
        after = ids.index(self.base['node_id']) + 1 if self.base['node_id'] in ids else len(ids)
        for n in tree['nodes'][after:]:
            if n['agent'] == me and not n['pruned']:
                tools.discard(n['node_id'], f'abandoned: {self.stale} ideas after {self.base["node_id"][:7]} '
                              f'did not improve it; {why}')

    def _test(self, read: _Reader, node_id: str, budget: dict, stop: Callable[[], bool]) -> dict | None:
        """Rollouts in chunks; stop once even the Wilson upper bound of pass@k is below the base's pass@k."""
        total = int(budget['trials_per_node'])
        step = max(1, int(budget['chunk'])) if budget['early_stop'] else total
        base_k = (self.base or {}).get('pass_at_k') or 0.0
        node, done, failed_trial = None, 0, None
        while done < total and not stop():
            answer = read('run_trial', node_id=node_id, trials=min(step, total - done))
            if not answer.ok:
                break
            node = answer.data['node']
            done += len(answer.data['rollouts'])
            failed_trial = failed_trial or next((r['trial_id'] for r in answer.data['rollouts']
                                                 if r['success_attempt'] is None), None)
            if 'trials' not in node:
                break
            high = metrics.wilson_interval(node['successes_at_k'], node['trials'])[1]
            if done < total and (node['successes_at_k'] == 0 or high < base_k) and node['trials'] >= 2:
                break
        if failed_trial is not None and not stop():
            read('get_trial', trial_id=failed_trial)   # the attempts' reasons and the frames, for the record
        return node if node is not None and 'trials' in node else None


class _Reader:
    """Tool calls whose answers count as read tokens (text length / 4)."""

    def __init__(self, tools: CellToolbox):
        self.tools = tools
        self.tokens = 0
        self._counted = 0

    def __call__(self, tool: str, **args) -> ToolResult:
        result = self.tools.call(tool, args)
        self.tokens += len(result.text) // 4
        return result

    def tokens_since(self) -> int:
        new, self._counted = self.tokens - self._counted, self.tokens
        return new


def _summary(node: dict) -> TrialSummary:
    return TrialSummary(node_id=node['node_id'], hypothesis=node['hypothesis'], trials=node.get('trials', 0),
                        successes_at_1=node.get('successes_at_1', 0),
                        successes_at_k=node.get('successes_at_k', 0), mean_score=node.get('mean_score', 0.0),
                        failure_reasons=node.get('failure_reasons', []))
