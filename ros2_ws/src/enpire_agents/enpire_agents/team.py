"""The closed loop of a team of agents (no rclpy here; the ROS path is behind `TrialRunner`).

Each agent, in its own thread: build a request from the hypothesis tree (its history, its best, its
peers' best and their code) -> backend.propose -> guard + code check -> evaluate the code on the
improvement seeds through the `TrialRunner` -> commit the idea with its result to the agent's branch ->
keep (a new best), revise (try again from the best) or abandon (prune the line, reuse a peer's best).
When a node meets the success bar on its improvement trials, the team confirms it on the held-out
evaluation seeds (which no agent ever sees); a confirmed node stops the team, as does any budget.

Runners: `FleetTrialRunner` (the cells' `run_trial` actions over the ROS graph through
`enpire_rollout.fleet_client`; the real path, it takes the caller's node) and `LocalTrialRunner` (the
pure simulator in this process through `local_eval`, for unit tests and quick runs).
"""
from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from enpire_agents import bag_evidence, guard, metrics
from enpire_agents.backends.base import (
    ImprovementRequest,
    PolicyBackend,
    Proposal,
    TeamIdea,
    TrialSummary,
    code_sha256,
)
from enpire_agents.backends.prompting import contract_text
from enpire_agents.cell_tools import CellToolbox, Spent, ToolLedger
from enpire_agents.experiment import AgentSpec, ExperimentConfig
from enpire_agents.hypothesis_tree import HypothesisTree, NodeResult, TreeNode, empty_policy
from enpire_agents.metrics import CellTime, ProgressPoint, Rate
from enpire_rollout.trial_outcome import TrialOutcome


class TrialRunner(Protocol):
    """Runs rollouts of one policy source and reports them, with the per-cell time accounting."""

    def run(self, code: str, seeds: Sequence[int], *, distribution: str, attempts: int,
            steps_per_attempt: int, label: str, record: bool | None = None) -> list[TrialOutcome]: ...

    def cell_times(self) -> list[CellTime]: ...

    def close(self) -> None: ...


class LocalTrialRunner:
    """Rollouts in this process on the pure simulator (`enpire_agents.local_eval`) of `task` (None: the one
    installed task, where only one is); one virtual cell."""

    def __init__(self, perception: str = 'auto', procs: int = 1, task: str | None = None):
        self.perception = perception
        self.task = task          # None: the one installed task
        self.procs = procs
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._execute_s = 0.0
        self._trials = 0

    def run(self, code, seeds, *, distribution, attempts, steps_per_attempt, label='', record=None):
        """`record` is moot: in-process rollouts leave no bag."""
        from enpire_agents import local_eval
        with self._lock:   # one simulated cell: rollouts take turns, like trials on one robot
            result = local_eval.evaluate(code, list(seeds), attempts=attempts, distribution=distribution,
                                         perception=self.perception, procs=self.procs,
                                         steps_per_attempt=steps_per_attempt, task=self.task)
            self._execute_s += result.seconds
            self._trials += len(result.records)
        share = result.seconds / max(1, len(result.records))
        return [r.model_copy(update={'execute_s': share, 'cell': 'local', 'tag': label})
                for r in result.records]

    def cell_times(self):
        return [CellTime(cell='local', wall_s=time.monotonic() - self._start, execute_s=self._execute_s,
                         idle_s=max(0.0, time.monotonic() - self._start - self._execute_s),
                         trials=self._trials)]

    def close(self):
        pass


class FleetTrialRunner:
    """Rollouts as `run_trial` goals on the experiment's cells, through the rollout fleet client.

    The policy source is written to `policy_dir/<sha256>.py` and referenced by path and content hash.
    Batches from different agents run at once and share the cells through the client's one scheduler
    (a free cell takes the next waiting trial, whichever agent's it is). Per-cell time accounting sums
    the trials' reset / execute / verify times per cell over the whole run.
    """

    def __init__(self, node, cells: Sequence[str], policy_dir: str | Path, *, task: str,
                 time_budget_s: float = 0.0, record: bool = False,
                 progress: Callable[[str], None] | None = None, fleet_time: bool = False):
        from enpire_rollout.fleet_client import FleetClient, FleetClock
        # fleet_time: the team's clock is the fleet clock (trials placed by their cell-time durations)
        self.fleet_clock = FleetClock(list(cells)) if fleet_time else None
        self.client = FleetClient(node, cells=list(cells),
                                  **({'clock': self.fleet_clock} if fleet_time else {}))
        self.cells = list(cells)
        self.policy_dir = Path(policy_dir)
        self.policy_dir.mkdir(parents=True, exist_ok=True)
        self.task, self.time_budget_s, self.record = task, time_budget_s, record
        self.progress = progress
        self._outcomes_lock = threading.Lock()     # the bookkeeping: never waits for another agent's batch
        self._start = time.monotonic()
        self._outcomes: list[TrialOutcome] = []

    def _policy_file(self, code: str) -> tuple[Path, str]:
        import hashlib
        digest = hashlib.sha256(code.encode()).hexdigest()
        path = self.policy_dir / f'{digest}.py'
        if not path.exists():       # atomically: another agent's trial may read the same file meanwhile
            tmp = path.with_name(f'.{digest}.{threading.get_ident()}.tmp')
            tmp.write_text(code)
            tmp.replace(path)
        return path, digest

    def run(self, code, seeds, *, distribution, attempts, steps_per_attempt, label='', stop=None,
            record: bool | None = None):
        """`record`: a bag per trial (None: as the runner was configured)."""
        from enpire_rollout.fleet_client import TrialRequest
        path, digest = self._policy_file(code)
        requests = [TrialRequest(task=self.task, policy_path=str(path), policy_sha256=digest, seed=int(seed),
                                 distribution=distribution, attempts=attempts,
                                 steps_per_attempt=steps_per_attempt, time_budget_s=self.time_budget_s,
                                 record=self.record if record is None else record, tag=label)
                    for seed in seeds]
        def on_trial(outcome, done: int, total: int) -> None:
            if self.progress is not None:
                scores = ', '.join(f'{x:.2f}' for x in outcome.attempt_scores)
                verdict = 'success' if outcome.success else (outcome.failure_reason or 'failed')
                self.progress(f'  {label} trial {done}/{total} on {outcome.cell} '
                              f'seed {outcome.seed}: '
                              f'{verdict} after {outcome.attempts_used} attempt(s) [{scores}] '
                              f'in {outcome.wall_s:.1f} s')

        outcomes = self.client.run_trials(requests, progress=on_trial, stop=stop)   # agents share the cells
        with self._outcomes_lock:
            self._outcomes.extend(outcomes)
        return outcomes

    def holding(self, cell: str, timeout_s: float = 600.0):
        """The cell kept free of the team's trials meanwhile (see FleetClient.holding)."""
        return self.client.holding(cell, timeout_s)

    def clock(self) -> Callable[[], float] | None:
        """The team's clock when the runner keeps fleet time (None: the team keeps wall time)."""
        return self.fleet_clock.now if self.fleet_clock is not None else None

    def cell_times(self) -> list[CellTime]:
        """Per cell, over the whole run: time in reset / executing / verifying, the rest idle (on the fleet
        clock when the runner keeps it, else on the wall clock)."""
        wall = self.fleet_clock.elapsed() if self.fleet_clock else time.monotonic() - self._start
        with self._outcomes_lock:
            outcomes = list(self._outcomes)
        cells: list[CellTime] = []
        for cell in self.cells:
            mine = [o for o in outcomes if o.cell.strip('/') == cell.strip('/')]
            busy = [sum(o.reset_s for o in mine), sum(o.execute_s for o in mine),
                    sum(o.verify_s for o in mine)]
            if self.fleet_clock:     # one time base: the trials' cell time (a lockstep cell's clock runs
                busy = [0.0, sum(o.cell_time_s for o in mine), 0.0]   # only while the policy acts)
            cells.append(CellTime(cell=cell, wall_s=wall, reset_s=busy[0], execute_s=busy[1],
                                  verify_s=busy[2], idle_s=max(0.0, wall - sum(busy)), trials=len(mine)))
        return cells

    def close(self) -> None:
        close = getattr(self.client, 'close', None)
        if callable(close):
            close()


def _executed(outcomes: list[TrialOutcome]) -> list[TrialOutcome]:
    """The trials the policy ran in (`TrialOutcome.ran`): a trial that ended inside an attempt is a failed
    rollout, never a seed to replace."""
    return [o for o in outcomes if o.ran]


def make_backend(spec: AgentSpec, agent_index: int, seed: int,
                 work_dir: str | Path = 'runs/regimes') -> PolicyBackend:
    """The backend an agent spec names, seeded per agent (keys come from the environment only)."""
    if spec.tools:
        return _tool_agent(spec, seed * 1000 + agent_index)
    if spec.backend == 'offline':
        from enpire_agents.backends.offline import OfflineBackend
        return OfflineBackend(seed=seed * 1000 + agent_index)
    if spec.backend == 'regimes':
        from enpire_agents.regimes import regime_backends as rb
        own_seed, work = seed * 1000 + agent_index, Path(work_dir) / f'agent_{agent_index}'
        bags = spec.bag_root or '/tmp/enpire_bags'
        return rb.RegimeChooser({
            'tool_calling': rb.ToolCallingBackend(own_seed),
            'behaviour_cloning': rb.BehaviourCloningBackend(bags, work / 'bc', own_seed),
            'offline_rl': rb.OfflineRLBackend(bags, work / 'offline_rl', own_seed),
            'online_rl': rb.OnlineRLBackend(work / 'online_rl', own_seed),
        }, seed=own_seed)
    key_env = {'api_key_env': spec.api_key_env} if spec.api_key_env else {}
    if spec.backend == 'anthropic':
        from enpire_agents.backends.anthropic_backend import AnthropicBackend
        return AnthropicBackend(model=spec.model, base_url=spec.base_url, **key_env)
    from enpire_agents.backends.openai_backend import OpenAIBackend, OpenAICompatibleBackend
    if spec.backend == 'openai_compatible':
        return OpenAICompatibleBackend(model=spec.model, base_url=spec.base_url, **key_env)
    return OpenAIBackend(model=spec.model, base_url=spec.base_url, **key_env)


def _tool_agent(spec: AgentSpec, seed: int):
    """A tool-driven agent (multi-turn sessions through `cell_tools`) for the spec's backend."""
    key_env = {'api_key_env': spec.api_key_env} if spec.api_key_env else {}
    if spec.backend == 'offline':
        from enpire_agents.backends.offline_agent import OfflineToolAgent
        return OfflineToolAgent(seed=seed)
    if spec.backend == 'anthropic':
        from enpire_agents.backends.tool_agents import AnthropicToolAgent
        return AnthropicToolAgent(spec.model, base_url=spec.base_url, **key_env)
    if spec.backend in ('openai', 'openai_compatible'):
        from enpire_agents.backends.tool_agents import OpenAIToolAgent
        return OpenAIToolAgent(spec.model, base_url=spec.base_url, **key_env)
    raise ValueError(f'backend {spec.backend!r} has no tool-driven agent')


def _code_check(code: str, task: str) -> list[str]:
    from enpire_agents.backends.code_check import check_code
    result = check_code(code, task)
    return [] if result.ok else [f'{result.kind}: {result.reason}']


class NodeRecord(BaseModel):
    """One idea on the wall-clock axis, for the timeline and the report."""
    node_id: str
    agent: str
    round: int
    hypothesis: str
    t_start: float
    t_end: float
    status: str                      # evaluated | rejected | error
    decision: str                    # keep | revise | abandon | rejected
    score: float
    pass_at_1: float = 0.0
    pass_at_k: float = 0.0
    mean_score: float = 0.0
    trials: int = 0
    tokens: int = 0
    reused_from: str | None = None
    reused_from_agent: str | None = None
    parent: str | None = None
    pruned: str | None = None


class Evaluation(BaseModel):
    """A policy measured on held-out seeds (the agents never saw these seeds or these outcomes)."""
    node_id: str
    distribution: str
    k: int
    pass_at_1: Rate
    pass_at_k: Rate
    mean_score: float
    t_s: float
    wall_s: float
    meets_bar: bool
    not_run: int = 0                 # trials the cell could not start (e.g. an unverified reset): not counted
    not_run_reasons: list[str] = Field(default_factory=list)
    skipped: int = 0                 # seeds left out when the evaluation's time budget ran out
    bag_paths: list[str] = Field(default_factory=list)   # the rollouts' bags, in the order of the seeds


class TeamResult(BaseModel):
    experiment: str
    team_size: int
    backends: list[str]
    cells: list[str]
    started_unix: float
    wall_s: float
    stop_reason: str
    reached_bar: bool
    time_to_bar_s: float | None = None
    tokens_to_bar: int | None = None
    best_node: str | None = None
    best_agent: str | None = None
    best_code: str | None = None
    evaluation: Evaluation | None = None
    confirmations: list[Evaluation] = Field(default_factory=list)
    ood_evaluation: Evaluation | None = None
    nodes: list[NodeRecord] = Field(default_factory=list)
    progress: list[ProgressPoint] = Field(default_factory=list)
    tokens: int = 0
    tokens_per_agent: dict[str, int] = Field(default_factory=dict)
    clock: str = 'wall'              # what t_s, wall_s and time_to_bar_s are on: 'wall' or 'fleet'
    run_wall_s: float = 0.0          # the run's wall-clock time, whatever `clock` says
    thinking_wall_s: dict[str, float] = Field(default_factory=dict)   # per agent: wall time in its backend
    trials: int = 0
    robot_time_s: float = 0.0
    utilization: metrics.RobotUtilization | None = None
    integrity: guard.Integrity | None = None
    tree_path: str = ''
    tree_log: str = ''


class Team:
    """N agents improving one task's policy together; `run()` returns a `TeamResult`."""

    def __init__(self, config: ExperimentConfig, runner: TrialRunner, out_dir: str | Path, *,
                 backends: Sequence[PolicyBackend] | None = None,
                 progress: Callable[[str], None] | None = None,
                 protected: guard.ProtectedFiles | None = None,
                 evaluate_ood: bool = False,
                 clock: Callable[[], float] = time.monotonic, clock_name: str = 'wall',
                 wall_cap_s: float | None = None, cell_control=None):
        self.config = config
        self.runner = runner
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.agents = [f'agent_{i}' for i in range(config.team.size)]
        specs = config.team.agent_specs()
        self.backends = list(backends) if backends is not None else [
            make_backend(spec, i, config.seed, self.out_dir / 'regimes') for i, spec in enumerate(specs)]
        if len(self.backends) != len(self.agents):
            raise ValueError(f'{len(self.backends)} backends for a team of {len(self.agents)}')
        self.progress = progress or (lambda line: None)
        self.protected = protected
        self.evaluate_ood = evaluate_ood
        # `clock` is the team's time axis (budgets.wall_clock_s and every t_s are on it); with the fleet
        # clock that is the cells' time, and `wall_cap_s` still bounds the run on the wall clock
        self.clock, self.clock_name, self.wall_cap_s = clock, clock_name, wall_cap_s
        self.cell_control = cell_control      # reset / verify for tool-driven agents (`cell_link`)
        self.ledger: ToolLedger | None = None
        self.tree = HypothesisTree.create(self.out_dir / 'hypothesis_tree.git', config.name,
                                          empty_policy(config.task))
        for agent in self.agents:
            self.tree.add_agent(agent)
        self.contract = contract_text()
        self._lock = threading.RLock()
        self._confirm_lock = threading.Lock()
        self._stop = threading.Event()
        # a runner that can drop its queued trials does so once the team stops (a halted team's robot
        # time ends with the trials already on the cells); held-out confirmation is never cut this way
        takes_stop = 'stop' in inspect.signature(runner.run).parameters
        self._until_stop = {'stop': self._stop.is_set} if takes_stop else {}
        self._stop_reason = ''
        self._t0 = 0.0
        self._tokens: dict[str, int] = {a: 0 for a in self.agents}
        self._thinking_s: dict[str, float] = {a: 0.0 for a in self.agents}
        self._wall0 = 0.0
        self._trials = 0
        self._robot_s = 0.0
        self._records: list[NodeRecord] = []
        self._progress: list[ProgressPoint] = [ProgressPoint(t_s=0.0, tokens=0)]
        self._confirmations: list[Evaluation] = []
        self._confirmed: Evaluation | None = None
        self._confirmed_at: ProgressPoint | None = None
        self._seed_cursor = 0
        self._errors: list[str] = []
        self._claims: dict[str, TeamIdea] = {}    # per agent: the idea on the cells now, not yet committed

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> TeamResult:
        self._t0 = self.clock()
        self._wall0 = time.monotonic()
        self.ledger = ToolLedger(self.config.budgets, self.out_dir / 'tool_calls.jsonl', spent=self._spent,
                                 charge=self._charge, clock=self.clock)
        started_unix = time.time()
        self.progress(f'team of {len(self.agents)} on {self.config.task}, cells {self.config.cells}, '
                      f'bar pass@{self.config.success_bar.k} >= {self.config.success_bar.pass_at_k}')
        threads = [threading.Thread(target=self._agent_loop, args=(i, a), name=a, daemon=True)
                   for i, a in enumerate(self.agents)]
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=0.5)
                if self._elapsed() > self.config.budgets.wall_clock_s:
                    self._halt(self._time_budget_name())
                if self.wall_cap_s is not None and time.monotonic() - self._wall0 > self.wall_cap_s:
                    self._halt(f'wall-clock cap of {self.wall_cap_s:.0f} s')
        except KeyboardInterrupt:
            self._halt('interrupted')
            for thread in threads:
                thread.join(timeout=10)
            raise
        if not self._stop_reason:
            self._halt('every agent used its rounds')
        return self._result(started_unix)

    def _agent_loop(self, index: int, agent: str) -> None:
        backend = self.backends[index]
        base: TreeNode | None = None          # the node this agent currently builds on
        stale = 0                             # non-improving ideas since `base`
        # a tool-driven agent runs its own multi-turn sessions through the tools, one per round
        toolbox = self._toolbox(agent, backend) if getattr(backend, 'tool_driven', False) else None
        for round in range(1, self.config.improvement.max_rounds + 1):
            if self._stop.is_set() or self._over_budget():
                return
            try:
                if toolbox is not None:
                    ended = backend.session(toolbox, round, stop=self._stop.is_set)
                    self.progress(f'{agent} session {round}: {ended}')
                else:
                    base, stale = self._one_idea(agent, backend, round, base, stale)
            except Exception as exc:  # noqa: BLE001 - one agent's failure must not stop the team
                self._errors.append(f'{agent} round {round}: {type(exc).__name__}: {exc}')
                self.progress(f'{agent} round {round}: error {type(exc).__name__}: {exc}')
                self._add_tokens(agent, getattr(exc, 'tokens_in', 0) + getattr(exc, 'tokens_out', 0))
                if getattr(exc, 'kind', '') in ('auth', 'transcript'):
                    return          # a missing or refused key, a replay transcript at its end: cannot go on
                self._stop.wait(min(30.0, getattr(exc, 'retry_after_s', None) or 0.5))

    def _one_idea(self, agent, backend, round, base, stale):
        cfg = self.config
        # Abandon a line that stopped improving, or take a peer's clearly better idea.
        peer = self._best_peer(agent)
        if peer is not None and (base is None or peer.score > base.score + cfg.team.reuse_margin
                                 or stale >= cfg.team.patience):
            if base is not None and stale >= cfg.team.patience:
                self._prune_since(agent, base, f'abandoned: {stale} ideas after {base.node_id[:7]} did not '
                                  f'improve it; reusing {peer.agent} {peer.node_id[:7]}')
            base, stale = peer, 0
        elif base is not None and stale >= cfg.team.patience * 2:
            self._prune_since(agent, base, f'abandoned: {stale} ideas after {base.node_id[:7]} did not '
                              'improve it')
            stale = 0
        t_start = self._elapsed()
        proposal = self._claimed_proposal(agent, backend, round, base)
        try:
            return self._test_idea(agent, backend, round, base, stale, proposal, t_start)
        finally:
            with self._lock:        # committed by now (or failed): the tree holds it, the claim ends
                self._claims.pop(agent, None)

    def _claimed_proposal(self, agent: str, backend, round: int, base: TreeNode | None) -> Proposal:
        """The agent's next idea, claimed at once so that its peers steer clear of it while it is tested.
        An idea a peer claimed between this agent's look at the tree and its answer (the same code) is
        asked for again with the tree as it is now, up to twice."""
        for attempt in range(3):
            request = self._request(agent, round, base, images=bool(getattr(backend, 'images', False)))
            thinking = time.monotonic()
            proposal: Proposal = backend.propose(request)
            with self._lock:
                self._thinking_s[agent] += time.monotonic() - thinking
            self._add_tokens(agent, proposal.tokens_in + proposal.tokens_out)
            sha = code_sha256(proposal.code)
            seen = {i.code_sha256 for i in request.team_ideas}
            with self._lock:
                now = {i.code_sha256 for i in self._team_ideas(agent)}
                if sha not in now - seen or attempt == 2:
                    self._claims[agent] = TeamIdea(agent=agent, hypothesis=proposal.hypothesis,
                                                   code_sha256=sha)
                    return proposal
            self.progress(f'{agent} #{round}: a peer has just claimed the same idea; asking again')
        raise AssertionError('unreachable')

    def _test_idea(self, agent, backend, round, base, stale, proposal: Proposal, t_start: float):
        """Check, score on improvement seeds and commit one claimed idea; keep, revise or abandon."""
        cfg = self.config
        revises = proposal.parent if proposal.parent and self._known(proposal.parent) else (
            base.node_id if base else None)
        reused_from = revises if revises and self.tree.node(revises).agent != agent else None
        problems = guard.check_proposal(proposal.code, cfg.task, cfg.held_out_seeds()).reasons
        if not problems:
            problems = _code_check(proposal.code, cfg.task)
        if problems:
            result = NodeResult(status='rejected', k=cfg.success_bar.k, failure_reasons=problems)
            node = self._commit(agent, round, proposal, result, revises, reused_from, t_start, backend)
            node = self.tree.prune(node.node_id, f'rejected before any trial: {problems[0]}')
            self._record(node, 'rejected')
            self.progress(f'{agent} #{round} rejected: {problems[0]}')
            return base, stale + 1
        seeds = self._next_seeds()
        guard.assert_improvement_seeds(seeds, cfg)
        outcomes = self._score_idea(proposal.code, seeds, base, f'{agent}#{round}')
        ran = _executed(outcomes)
        if not ran:
            raise RuntimeError(f'no trial ran: {outcomes[0].failure_reason if outcomes else "no outcome"}')
        result = self._summarise(ran, [o.seed for o in ran])
        with self._lock:
            self._trials += len(outcomes)
            self._robot_s += sum(o.reset_s + o.execute_s + o.verify_s for o in outcomes)
        node = self._commit(agent, round, proposal, result, revises, reused_from, t_start, backend)
        if base is None or node.score > base.score:
            decision, base, stale = 'keep', node, 0
        else:
            stale += 1
            decision = 'revise'
            if node.score < base.score - 0.25:
                node = self.tree.prune(node.node_id, f'worse than {base.node_id[:7]} '
                                       f'(pass@{result.k} {result.pass_at_k:.2f} vs '
                                       f'{base.result.pass_at_k:.2f})')
                decision = 'abandon'
        self._record(node, decision)
        self.progress(f'{agent} #{round} {decision}: pass@1 {result.pass_at_1:.2f} pass@{result.k} '
                      f'{result.pass_at_k:.2f} score {result.mean_score:.3f}'
                      f'{" (reuses " + reused_from[:7] + ")" if reused_from else ""}'
                      f' -- {node.hypothesis[:70]}')
        if self._meets_bar(result):
            self._confirm(node)
        return base, stale

    # -- tool-driven agents ---------------------------------------------------------------------

    def _toolbox(self, agent: str, backend) -> CellToolbox:
        from enpire_agents.bag_evidence import trial_evidence
        return CellToolbox(agent, self.config, self.tree, self.runner, self.ledger, cell=self.cell_control,
                           backend=getattr(backend, 'name', type(backend).__name__),
                           seed_window=self._next_seeds, on_tested=lambda node: self._tested(agent, node),
                           stopped=lambda: self._stop_reason if self._stop.is_set() else '',
                           on_tokens=lambda tokens: self._add_tokens(agent, tokens), frames=trial_evidence)

    def _tested(self, agent: str, node: TreeNode) -> None:
        """A node an agent tested (or discarded) through its tools: the timeline, and the bar's confirmation
        once the node meets it on at least `trials_per_node` improvement rollouts."""
        result = node.result
        if result is None or result.status != 'evaluated':
            return
        best = self.tree.best(agent)
        decision = 'abandon' if node.pruned else 'keep' if best and best.node_id == node.node_id else 'revise'
        with self._lock:
            self._records = [r for r in self._records if r.node_id != node.node_id]
        self._record(node, decision)
        self.progress(f'{agent} {node.node_id[:7]} {decision}: pass@1 {result.pass_at_1:.2f} pass@{result.k} '
                      f'{result.pass_at_k:.2f} on {result.trials} rollouts -- {node.hypothesis[:70]}')
        if not node.pruned and result.trials >= self.config.improvement.trials_per_node \
                and self._meets_bar(result):
            self._confirm(node)

    def _spent(self) -> Spent:
        with self._lock:
            return Spent(trials=self._trials, robot_s=self._robot_s, tokens=sum(self._tokens.values()),
                         wall_s=self._elapsed())

    def _charge(self, trials: int, robot_s: float) -> None:
        with self._lock:
            self._trials += trials
            self._robot_s += robot_s

    # -- pieces ---------------------------------------------------------------------------------

    def _score_idea(self, code: str, seeds: list[int], base: TreeNode | None,
                    label: str) -> list[TrialOutcome]:
        """Rollouts of an idea on improvement seeds, in chunks; stops early once the idea cannot beat its
        base (even its Wilson upper bound on pass@k is below the base's pass@k) or has failed every
        rollout so far. Robot time goes to promising ideas, as an experimenter would spend it."""
        cfg = self.config
        share = -(-len(cfg.cells) // cfg.team.size)        # this agent's share of the fleet's cells
        step = len(seeds) if not cfg.improvement.early_stop else max(cfg.improvement.chunk, share)
        outcomes: list[TrialOutcome] = []
        for start in range(0, len(seeds), step):
            if self._stop.is_set():
                break
            outcomes += self.runner.run(code, seeds[start:start + step], distribution=cfg.distribution,
                                        attempts=cfg.attempts, steps_per_attempt=cfg.steps_per_attempt,
                                        label=label, **self._until_stop)
            ran = _executed(outcomes)
            if not cfg.improvement.early_stop or len(ran) < 2 or start + step >= len(seeds):
                continue
            at_k = metrics.pass_at(ran, cfg.success_bar.k)
            base_k = base.result.pass_at_k if base is not None and base.result else 0.0
            if at_k.successes == 0 or at_k.high < base_k:
                self.progress(f'{label}: stopped scoring after {len(ran)} rollouts '
                              f'(pass@{cfg.success_bar.k} {at_k.successes}/{at_k.n}, base {base_k:.2f})')
                break
        return outcomes

    def _request(self, agent: str, round: int, base: TreeNode | None,
                 images: bool = False) -> ImprovementRequest:
        """The search as this agent sees it; key frames (from the base's recorded failed rollouts) only for a
        backend that takes images."""
        own = [n for n in self.tree.nodes(agent)][-6:]
        peers = [b for b in (self.tree.best(a) for a in self.agents if a != agent) if b is not None]
        frames: list[bytes] = []
        if images and base is not None and base.result is not None:
            frames = bag_evidence.key_frames(base.result.rollouts)
        return ImprovementRequest(
            task=self.config.task, contract=self.contract, agent_id=agent, round=round,
            best_code=self.tree.code(base.node_id) if base else None,
            best=self._summary(base) if base else None,
            history=[self._summary(n) for n in own],
            peer_best=[self._summary(n) for n in peers],
            peer_code={n.node_id: self.tree.code(n.node_id) for n in peers}, key_frames_png=frames,
            team_ideas=self._team_ideas(agent),
            seed=self.config.seed * 100_003 + self.agents.index(agent) * 1009 + round)

    def _team_ideas(self, agent: str) -> list[TeamIdea]:
        """The shared tree as an agent sees it before its next idea: every committed idea (pruned ones too:
        a dead end is not worth testing again) and the ideas its peers are testing now."""
        ideas = [TeamIdea(agent=n.agent, hypothesis=n.hypothesis, code_sha256=n.code_sha256,
                          result=self._summary(n).model_copy(update={'rollouts': []}))
                 for n in self.tree.nodes() if n.code_sha256]
        with self._lock:
            return ideas + [c for a, c in self._claims.items() if a != agent]

    @staticmethod
    def _summary(node: TreeNode) -> TrialSummary:
        r = node.result or NodeResult(status='error')
        return TrialSummary(node_id=node.node_id, hypothesis=node.hypothesis, trials=r.trials,
                            successes_at_1=r.successes_at_1, successes_at_k=r.successes_at_k,
                            mean_score=r.mean_score, failure_reasons=list(r.failure_reasons),
                            rollouts=list(r.rollouts))

    def _summarise(self, outcomes: list[TrialOutcome], seeds: list[int]) -> NodeResult:
        k = self.config.success_bar.k
        at1, atk = metrics.pass_at(outcomes, 1), metrics.pass_at(outcomes, k)
        return NodeResult(status='evaluated', trials=len(outcomes), k=k, successes_at_1=at1.successes,
                          successes_at_k=atk.successes, pass_at_1=at1.rate, pass_at_k=atk.rate,
                          mean_score=metrics.mean_best_score(outcomes),
                          failure_reasons=metrics.failure_reasons(outcomes), seeds=list(seeds),
                          rollouts=list(outcomes))

    def _next_seeds(self, n: int | None = None) -> list[int]:
        """The next window of improvement seeds (rotating, so ideas are not tuned to a handful of starts)."""
        pool = self.config.improvement_seeds()
        n = min(n or self.config.improvement.trials_per_node, len(pool))
        with self._lock:
            start = self._seed_cursor
            self._seed_cursor = (self._seed_cursor + n) % len(pool)
        return [pool[(start + i) % len(pool)] for i in range(n)]

    def _commit(self, agent, round, proposal, result, revises, reused_from, t_start, backend) -> TreeNode:
        return self.tree.commit_idea(agent, proposal.code, proposal.hypothesis, result, round=round,
                                     revises=revises, reused_from=reused_from, t_start=t_start,
                                     t_end=self._elapsed(), tokens_in=proposal.tokens_in,
                                     tokens_out=proposal.tokens_out, regime=proposal.regime,
                                     backend=getattr(backend, 'name', type(backend).__name__))

    def _known(self, node_id: str) -> bool:
        try:
            self.tree.node(node_id)
            return True
        except KeyError:
            return False

    def _best_peer(self, agent: str) -> TreeNode | None:
        peers = [b for b in (self.tree.best(a) for a in self.agents if a != agent) if b is not None]
        return max(peers, key=lambda n: n.score) if peers else None

    def _prune_since(self, agent: str, base: TreeNode, reason: str) -> None:
        for node in self.tree.nodes(agent):
            if node.t_end > base.t_end and not node.pruned and node.node_id != base.node_id:
                self.tree.prune(node.node_id, reason)
                with self._lock:
                    for record in self._records:
                        if record.node_id == node.node_id:
                            record.pruned = reason

    def _meets_bar(self, result: NodeResult) -> bool:
        bar = self.config.success_bar
        return result.status == 'evaluated' and result.pass_at_k >= bar.pass_at_k and \
            result.pass_at_1 >= bar.pass_at_1

    def _confirm(self, node: TreeNode) -> None:
        """Held-out confirmation of a candidate on the evaluation seeds; one at a time."""
        if not self.config.success_bar.held_out_confirmation:
            self._halt('success bar met on improvement trials (held-out confirmation off)')
            return
        with self._confirm_lock:
            if self._stop.is_set() or len(self._confirmations) >= self.config.success_bar.max_confirmations:
                return
            self.progress(f'{node.agent} {node.node_id[:7]} meets the bar on its trials: confirming on '
                          f'{self.config.success_bar.n_eval} held-out rollouts')
            evaluation = self.evaluate(node.node_id, self.config.evaluation_pool(), self.config.distribution,
                                       target=self.config.success_bar.n_eval)
            with self._lock:
                self._confirmations.append(evaluation)
            self.progress(f'held-out: pass@1 {evaluation.pass_at_1.fmt()}, pass@{evaluation.k} '
                          f'{evaluation.pass_at_k.fmt()} -> '
                          f'{"CONFIRMED" if evaluation.meets_bar else "not confirmed"}')
            if evaluation.meets_bar:
                with self._lock:
                    self._confirmed = evaluation
                    self._confirmed_at = ProgressPoint(t_s=evaluation.t_s, tokens=sum(self._tokens.values()),
                                                       team_success=self._team_success(),
                                                       team_score=self._team_score(), at_bar=True)
                    self._progress.append(self._confirmed_at)
                self._halt('success bar confirmed on held-out evaluation seeds', overrides=True)

    def evaluate(self, node_id: str, seeds: list[int], distribution: str,
                 target: int | None = None) -> Evaluation:
        """Measure a node on held-out seeds (team-side only; results never reach an agent).

        Seeds are taken in order until `target` rollouts have run (a seed whose trial the cell could
        not start, e.g. an unverified reset, is replaced by the next held-out seed; all are reported).
        Runs in chunks and stops at `budgets.evaluation_wall_clock_s`; an evaluation cut short, or
        one that could not reach `target` rollouts, cannot confirm the bar."""
        cfg = self.config
        target = len(seeds) if target is None else target
        t = self._elapsed()
        code = self.tree.code(node_id)
        chunk = max(4, 2 * len(cfg.cells))
        outcomes: list[TrialOutcome] = []
        skipped = 0
        position = 0
        while position < len(seeds):
            missing = target - len(_executed(outcomes))
            if missing <= 0:
                break
            if self._elapsed() - t > cfg.budgets.evaluation_wall_clock_s:
                skipped = missing
                self.progress(f'held-out {node_id[:7]}: evaluation time budget spent, '
                              f'{skipped} rollouts short')
                break
            batch = seeds[position:position + min(chunk, missing)]
            position += len(batch)
            # Held-out rollouts are always recorded: the published figures can be audited, and their
            # ground truth (team-side only) is replayed from the bags.
            outcomes += self.runner.run(code, batch, distribution=distribution,
                                        attempts=cfg.attempts, steps_per_attempt=cfg.steps_per_attempt,
                                        label=f'held-out {node_id[:7]}', record=True)
        skipped = max(skipped, target - len(_executed(outcomes)))
        ran = _executed(outcomes)
        not_run = [o for o in outcomes if o not in ran]
        at1, atk = metrics.pass_at(ran, 1), metrics.pass_at(ran, cfg.success_bar.k)
        meets = atk.rate >= cfg.success_bar.pass_at_k and at1.rate >= cfg.success_bar.pass_at_1
        return Evaluation(node_id=node_id, distribution=distribution, k=cfg.success_bar.k, pass_at_1=at1,
                          pass_at_k=atk, mean_score=metrics.mean_best_score(ran), t_s=self._elapsed(),
                          wall_s=self._elapsed() - t, meets_bar=meets and bool(ran) and not skipped,
                          not_run=len(not_run), not_run_reasons=metrics.failure_reasons(not_run),
                          skipped=skipped, bag_paths=[o.bag_path for o in ran])

    def _record(self, node: TreeNode, decision: str) -> None:
        r = node.result or NodeResult(status='error')
        reused_agent = self.tree.node(node.reused_from).agent if node.reused_from else None
        record = NodeRecord(node_id=node.node_id, agent=node.agent, round=node.round,
                            hypothesis=node.hypothesis,
                            t_start=node.t_start, t_end=node.t_end, status=r.status, decision=decision,
                            score=node.score, pass_at_1=r.pass_at_1, pass_at_k=r.pass_at_k,
                            mean_score=r.mean_score, trials=r.trials, tokens=node.tokens,
                            reused_from=node.reused_from, reused_from_agent=reused_agent, parent=node.parent,
                            pruned=node.pruned)
        with self._lock:
            self._records.append(record)
            self._progress.append(ProgressPoint(t_s=node.t_end, tokens=sum(self._tokens.values()),
                                                team_success=self._team_success(),
                                                team_score=self._team_score()))

    def _team_success(self) -> float:
        """Team-average success: the mean over agents of each agent's best pass@k so far (0 before any)."""
        bests = [self.tree.best(a, include_pruned=True) for a in self.agents]
        return sum(b.result.pass_at_k for b in bests if b is not None) / len(self.agents)

    def _team_score(self) -> float:
        bests = [self.tree.best(a, include_pruned=True) for a in self.agents]
        return sum(b.result.mean_score for b in bests if b is not None) / len(self.agents)

    def _add_tokens(self, agent: str, tokens: int) -> None:
        with self._lock:
            self._tokens[agent] += tokens

    def _over_budget(self) -> bool:
        b = self.config.budgets
        with self._lock:
            reason = ('trial budget' if self._trials >= b.trials else
                      'robot-time budget' if self._robot_s >= b.robot_time_s else
                      'token budget' if sum(self._tokens.values()) >= b.tokens else
                      self._time_budget_name() if self._elapsed() >= b.wall_clock_s else '')
        if reason:
            self._halt(reason)
        return bool(reason)

    def _time_budget_name(self) -> str:
        return 'wall-clock budget' if self.clock_name == 'wall' else f'{self.clock_name}-clock time budget'

    def _halt(self, reason: str, overrides: bool = False) -> None:
        """Stop the team; the first reason is kept unless this one `overrides` it (a confirmation that
        finishes after a budget ran out is still why the team succeeded)."""
        with self._lock:
            if not self._stop_reason or overrides:
                self._stop_reason = reason
                self.progress(f'stop: {reason}')
        self._stop.set()

    def _elapsed(self) -> float:
        return self.clock() - self._t0

    def _result(self, started_unix: float) -> TeamResult:
        best = self.tree.best()
        final = self._confirmed
        if final is None and best is not None and self.config.success_bar.n_eval and not self._confirmations \
                and self.config.success_bar.held_out_confirmation:
            self.progress(f'final held-out evaluation of the best node {best.node_id[:7]}')
            final = self.evaluate(best.node_id, self.config.evaluation_pool(), self.config.distribution,
                                  target=self.config.success_bar.n_eval)
        elif final is None and self._confirmations:
            final = max(self._confirmations, key=lambda e: (e.pass_at_k.rate, e.pass_at_1.rate))
        final_node = final.node_id if final else (best.node_id if best else None)
        ood = None
        if self.evaluate_ood and final_node and self.config.ood_seeds():
            self.progress(f'out-of-distribution evaluation of {final_node[:7]}')
            ood = self.evaluate(final_node, self.config.ood_seeds(), self.config.evaluation.ood_distribution)
        cell_times = self.runner.cell_times()
        integrity = self.protected.verify() if self.protected else None
        if integrity is not None and not integrity.valid:
            self.progress(f'RUN INVALID: protected files changed: {integrity.changed}')
        reached = self._confirmed is not None and (integrity is None or integrity.valid)
        progress = sorted(self._progress, key=lambda p: p.t_s)
        progress.append(ProgressPoint(t_s=self._elapsed(), tokens=sum(self._tokens.values()),
                                      team_success=self._team_success(), team_score=self._team_score(),
                                      at_bar=reached))
        return TeamResult(
            experiment=self.config.name, team_size=len(self.agents),
            backends=[getattr(b, 'name', type(b).__name__) for b in self.backends], cells=self.config.cells,
            started_unix=started_unix, wall_s=self._elapsed(), stop_reason=self._stop_reason,
            reached_bar=reached,
            time_to_bar_s=self._confirmed_at.t_s if reached and self._confirmed_at else None,
            tokens_to_bar=self._confirmed_at.tokens if reached and self._confirmed_at else None,
            best_node=final_node, best_agent=self.tree.node(final_node).agent if final_node else None,
            best_code=self.tree.code(final_node) if final_node else None,
            evaluation=final, confirmations=self._confirmations, ood_evaluation=ood,
            nodes=sorted(self._records, key=lambda r: r.t_end), progress=progress,
            tokens=sum(self._tokens.values()), tokens_per_agent=dict(self._tokens), clock=self.clock_name,
            run_wall_s=time.monotonic() - self._wall0,
            thinking_wall_s={a: round(t, 3) for a, t in self._thinking_s.items()}, trials=self._trials,
            robot_time_s=self._robot_s, utilization=metrics.mean_robot_utilization(cell_times),
            integrity=integrity, tree_path=str(self.tree.path), tree_log=self.tree.log_graph())
