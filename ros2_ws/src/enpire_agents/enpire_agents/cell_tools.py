"""The tools an agent gets on an experiment, and the gate every call passes through (no rclpy, no MCP).

One `CellToolbox` per agent, bound to that agent's branch: the identity is fixed when the toolbox is made
(by the team, or by `enpire mcp --agent`), never taken from a call's arguments. The tool surface is the
permission gate: no tool edits the verifier, the reset, the safety limits, the seeds or another agent's
branch; trials and resets run on the experiment's improvement seeds only (a held-out seed is refused
without saying it is held out); every call is charged and logged to the experiment's record by the
shared `ToolLedger` (who, what, when, cost), and a call over budget is refused with the reason.

The same toolbox serves the MCP server (`enpire_agents.mcp_server`), the LLM agents' tool calling and
the offline agent, so every client sees the same tools, limits and answers.
"""
from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError, create_model

from enpire_agents import guard, metrics
from enpire_agents.experiment import Budgets, ExperimentConfig
from enpire_agents.hypothesis_tree import HypothesisTree, NodeResult, TreeNode
from enpire_env.request_checks import shown
from enpire_rollout.trial_core import MAX_POLICY_BYTES
from enpire_rollout.trial_outcome import TrialOutcome

MAX_HYPOTHESIS_CHARS = 2000    # one line of intent; the tree keeps it in HYPOTHESIS.md and the commit


class Refused(Exception):
    """A call the gate turned down; the message is the reason the agent reads."""


class CellUnreachable(Exception):
    """The cell's action or service is not on the graph (no cell up, another domain)."""


class ToolResult(BaseModel):
    """One tool's answer: text for the model, the same as data for programs, and images (PNG)."""
    ok: bool = True
    text: str
    data: dict[str, Any] = Field(default_factory=dict)
    images_png: list[bytes] = Field(default_factory=list)

    @classmethod
    def of(cls, data: dict[str, Any], images: Sequence[bytes] = ()) -> ToolResult:
        return cls(text=json.dumps(data, indent=1, default=str), data=data, images_png=list(images))


class ResetReport(BaseModel):
    success: bool
    tries_used: int = 0
    errors: dict[str, float] = Field(default_factory=dict)   # achieved vs target, named by the reset
    failure_reason: str = ''
    seconds: float = 0.0


class VerifyReport(BaseModel):
    verdict: str                      # success | failure | uncertain
    score: float = 0.0
    confidence: float = 0.0
    reason: str = ''
    cameras: list[str] = Field(default_factory=list)   # one line per camera
    evidence_png: bytes | None = None
    seconds: float = 0.0


class CellControl(Protocol):
    """The cell's reset and verifier, as the toolbox calls them (the graph adapter: `cell_link`)."""

    def unreachable(self, cell: str) -> str: ...

    def reset(self, cell: str, task: str, seed: int, distribution: str) -> ResetReport: ...

    def verify(self, cell: str, task: str) -> VerifyReport: ...


class TrialRecord(BaseModel):
    """One rollout an agent ran through `run_trial`: what `get_trial` and `list_trials` read back."""
    trial_id: str
    agent: str
    node_id: str
    t_s: float
    outcome: TrialOutcome

    def brief(self) -> dict[str, Any]:
        o = self.outcome
        return {'trial_id': self.trial_id, 'agent': self.agent, 'node_id': self.node_id, 'seed': o.seed,
                'cell': o.cell, 'success_attempt': o.first_success,
                'attempt_scores': [round(s, 4) for s in o.attempt_scores],
                'failure_reason': o.failure_reason, 'bag': Path(o.bag_path).name if o.bag_path else ''}


class Spent(BaseModel):
    trials: int = 0
    robot_s: float = 0.0
    tokens: int = 0
    wall_s: float = 0.0


class ToolLedger:
    """The experiment's budget and record of tool calls, shared by every agent's toolbox.

    `spent` reports what the experiment has used and `charge` adds to it (the team's own counters);
    without them the ledger counts the trials and robot time its tools ran (a standalone `enpire mcp`).
    The log is JSON lines, one per call: time, agent, tool, arguments (code replaced by its size), ok,
    reason, cost; the trials are kept beside it (`trials.jsonl`). A standalone ledger opened on an existing
    record continues it: spending, calls, trials and the wall clock since the first call carry over, so
    restarting the server (a client reconnecting) resets no budget."""

    def __init__(self, budgets: Budgets, log_path: str | Path, *, spent: Callable[[], Spent] | None = None,
                 charge: Callable[[int, float], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, max_calls: int = 10_000):
        self.budgets = budgets
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.max_calls = max_calls
        self._clock, self._t0 = clock, clock()
        self._spent_fn, self._charge_fn = spent, charge
        self._own = Spent()
        self._lock = threading.Lock()
        self._calls = 0
        self.trials_path = self.log_path.with_name('trials.jsonl')
        self.trials: list[TrialRecord] = []
        if spent is None:
            self._continue_record()
        self._ids = itertools.count(len(self.trials) + 1)

    def _continue_record(self) -> None:
        start = None                      # when the record began (unix time)
        if self.log_path.is_file():
            for line in self.log_path.read_text().splitlines():
                entry = json.loads(line)
                start = entry['time'] - entry['t_s'] if start is None else start
                self._calls += 1
                self._own.trials += int(entry['cost'].get('trials', 0))
                self._own.robot_s += float(entry['cost'].get('robot_s', 0.0))
        if self.trials_path.is_file():
            self.trials = [TrialRecord.model_validate_json(line)
                           for line in self.trials_path.read_text().splitlines()]
        if start is not None:
            self._t0 -= max(0.0, time.time() - start)

    def elapsed(self) -> float:
        return self._clock() - self._t0

    def spent(self) -> Spent:
        if self._spent_fn is not None:
            return self._spent_fn()
        with self._lock:
            return self._own.model_copy(update={'wall_s': self.elapsed()})

    def left(self) -> dict[str, float]:
        s, b = self.spent(), self.budgets
        with self._lock:
            calls = self._calls
        return {'trials': max(0, b.trials - s.trials),
                'robot_time_s': round(max(0.0, b.robot_time_s - s.robot_s), 1),
                'tokens': max(0, b.tokens - s.tokens),
                'wall_clock_s': round(max(0.0, b.wall_clock_s - s.wall_s), 1),
                'tool_calls': max(0, self.max_calls - calls)}

    def over_budget(self, trials: int = 0, robot: bool = False) -> str:
        """Why a call asking for `trials` rollouts (or robot time) cannot run now; '' when it can."""
        left = self.left()
        if left['tool_calls'] <= 0:
            return f'over budget: all {self.max_calls} tool calls of this experiment are used'
        if left['tokens'] <= 0:
            return f'over budget: the experiment\'s {self.budgets.tokens} tokens are spent'
        if not (robot or trials):
            return ''
        if left['wall_clock_s'] <= 0:
            return f'over budget: the experiment\'s wall clock of {self.budgets.wall_clock_s:.0f} s is spent'
        if left['robot_time_s'] <= 0:
            return f'over budget: the experiment\'s robot time of {self.budgets.robot_time_s:.0f} s is spent'
        if trials > left['trials']:
            return (f'over budget: {trials} trial(s) asked, {left["trials"]} left of the experiment\'s '
                    f'{self.budgets.trials}')
        return ''

    def charge(self, trials: int = 0, robot_s: float = 0.0) -> None:
        if self._charge_fn is not None:
            self._charge_fn(trials, robot_s)
            return
        with self._lock:
            self._own.trials += trials
            self._own.robot_s += robot_s

    def add_trials(self, agent: str, node_id: str, outcomes: Sequence[TrialOutcome]) -> list[TrialRecord]:
        with self._lock:
            records = [TrialRecord(trial_id=f'{agent}-t{next(self._ids):04d}', agent=agent, node_id=node_id,
                                   t_s=self.elapsed(), outcome=o) for o in outcomes]
            self.trials.extend(records)
            with self.trials_path.open('a', encoding='utf-8') as out:
                out.writelines(r.model_dump_json() + '\n' for r in records)
        return records

    def log(self, agent: str, tool: str, args: dict[str, Any], result: ToolResult, cost: dict[str, float],
            started: float) -> None:
        shown = {k: (f'<{len(v)} chars>' if k == 'code' and isinstance(v, str) else v)
                 for k, v in args.items()}
        entry = {'time': time.time(), 't_s': round(self.elapsed(), 3), 'agent': agent, 'tool': tool,
                 'args': shown, 'ok': result.ok, 'reason': '' if result.ok else result.text,
                 'cost': cost, 'seconds': round(time.monotonic() - started, 3)}
        with self._lock:
            self._calls += 1
            with self.log_path.open('a', encoding='utf-8') as out:
                out.write(json.dumps(entry, default=str) + '\n')


class CellToolbox:
    """The tools of one agent (`agent`) on one experiment. Every public tool method returns a ToolResult;
    a refusal is `ok=False` with the reason as its text, never an exception to the caller."""

    TOOLS = ('run_trial', 'get_trial', 'list_trials', 'reset_cell', 'verify', 'propose_policy', 'discard',
             'read_policy', 'tree', 'budget')

    def __init__(self, agent: str, config: ExperimentConfig, tree: HypothesisTree, runner, ledger: ToolLedger,
                 *,
                 cell: CellControl | None = None, backend: str = 'mcp',
                 seed_window: Callable[[int], list[int]] | None = None,
                 on_tested: Callable[[TreeNode], None] | None = None,
                 stopped: Callable[[], str] | None = None,
                 on_tokens: Callable[[int], None] | None = None,
                 frames: Callable[[str], tuple[dict[str, bytes], list[dict]]] | None = None):
        self.agent, self.config, self.runner, self.ledger = agent, config, runner, ledger
        self.hypotheses = tree
        self.cell, self.backend = cell, backend
        self.on_tested = on_tested or (lambda node: None)
        self.stopped = stopped or (lambda: '')
        self.on_tokens = on_tokens or (lambda tokens: None)
        self._frames = frames
        self._cursor = 0
        self._seed_window = seed_window or self._own_window
        self._rounds = itertools.count(len(tree.nodes(agent)) + 1)
        self._tokens = [0, 0]            # the tokens the agent spent since its last proposal (in, out)
        tree.add_agent(agent)

    # -- what every call goes through -------------------------------------------------------------------
    def call(self, tool: str, arguments: dict[str, Any] | str | None) -> ToolResult:
        """Run a tool by name with JSON arguments (LLM tool calls, as an object or its JSON text): unknown
        tools and bad arguments are refused with the reason, so a malformed call is an answer the model
        can correct."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                return self._logged(tool, {'raw': arguments[:200]}, ToolResult(
                    ok=False, text=f'malformed call to {tool}: the arguments are not valid JSON ({exc})'),
                    {}, time.monotonic())
        if tool not in self.TOOLS:
            unknown = ToolResult(ok=False, text=f'unknown tool {shown(tool)}; tools: {", ".join(self.TOOLS)}')
            return self._logged(tool, arguments or {}, unknown, {}, time.monotonic())
        try:
            args = tool_arguments(getattr(self, tool), arguments)
        except (ValidationError, TypeError) as exc:
            return self._logged(tool, arguments or {}, ToolResult(ok=False, text=f'malformed call to {tool}: '
                                                                  f'{_errors(exc)}'), {}, time.monotonic())
        return getattr(self, tool)(**args)

    def _gate(self, tool: str, args: dict[str, Any], body: Callable[[], tuple[ToolResult, dict[str, float]]],
              trials: int = 0, robot: bool = False) -> ToolResult:
        started = time.monotonic()
        why = self.stopped() if (trials or robot) else ''
        why = why and f'the experiment has stopped: {why}'
        why = why or self.ledger.over_budget(trials, robot)
        if why:
            return self._logged(tool, args, ToolResult(ok=False, text=why), {}, started)
        try:
            result, cost = body()
        except Refused as exc:
            result, cost = ToolResult(ok=False, text=str(exc)), {}
        except CellUnreachable as exc:
            result, cost = ToolResult(ok=False, text=f'the cell is not reachable: {exc}'), {}
        except TimeoutError as exc:
            result, cost = ToolResult(ok=False, text=f'the cell is busy: {exc}'), {}
        return self._logged(tool, args, result, cost, started)

    def _logged(self, tool, args, result, cost, started) -> ToolResult:
        self.ledger.log(self.agent, tool, args, result, cost, started)
        return result

    def spend_tokens(self, tokens_in: int, tokens_out: int) -> None:
        """Tokens the agent's model used (from the API's usage fields): credited to its next proposal."""
        self._tokens[0] += tokens_in
        self._tokens[1] += tokens_out
        self.on_tokens(tokens_in + tokens_out)

    def instructions(self) -> str:
        """Who the agent is and how it works, for a system prompt or an MCP server's instructions."""
        cfg = self.config
        return (f'You are {self.agent}, one agent of the experiment {cfg.name} ({cfg.task}); your branch is '
                f'{self.hypotheses.branch(self.agent)}. Improve the policy until pass@{cfg.success_bar.k} >= '
                f'{cfg.success_bar.pass_at_k} (pass@1 >= {cfg.success_bar.pass_at_1}). Loop: tree / '
                'list_trials / get_trial (frames) to see what fails, read_policy to read a node\'s code, '
                'propose_policy (a complete module) to commit an idea, run_trial to test it on the cell, '
                'discard what fails. '
                'You cannot change the verifier, the reset, the safety limits or the seeds, nor commit to '
                'another agent\'s branch; held-out evaluation is the experiment\'s. budget tells what is '
                'left; a call over budget is refused with the reason.')

    # -- the tools --------------------------------------------------------------------------------------
    def propose_policy(self, code: str, hypothesis: str, parent: str | None = None,
                       branch: str | None = None) -> ToolResult:
        """Commit a complete policy module and its one-line hypothesis as a new node on your branch.

        The static checks (policy contract, allowed imports, no reach into EN, seeds or ground truth) run
        first: a refusal is the answer, with the reasons. `parent`: the node this idea revises (yours or a
        peer's: reusing a peer's node records the edge); default your best. `branch`: only your own.
        Returns the node id to test with run_trial."""
        def body():
            own = self.hypotheses.branch(self.agent)
            if len(code.encode()) > MAX_POLICY_BYTES or len(hypothesis) > MAX_HYPOTHESIS_CHARS:
                raise Refused(f'refused: a policy module is at most {MAX_POLICY_BYTES} bytes and its '
                              f'hypothesis {MAX_HYPOTHESIS_CHARS} characters (got {len(code.encode())} '
                              f'bytes, {len(hypothesis)} characters); nothing committed')
            if branch not in (None, '', own, self.agent):
                raise Refused(f'refused: {shown(branch)} is another agent\'s branch; you may commit only to '
                              f'your own branch {own} (reuse a peer\'s node by naming it as parent)')
            if parent and not self._known(parent):
                raise Refused(f'refused: parent {shown(parent)} is not a node of this experiment\'s tree')
            problems = guard.check_proposal(code, self.config.task, self.config.held_out_seeds()).reasons
            if not problems:
                from enpire_agents.backends.code_check import check_code
                check = check_code(code, self.config.task)
                problems = [] if check.ok else [f'{check.kind}: {check.reason}']
            if problems:
                raise Refused('refused by the static check, nothing committed: ' + '; '.join(problems))
            base = self._resolve(parent) if parent else self.hypotheses.best(self.agent)
            revises = base.node_id if base else None
            reused = revises if base is not None and base.agent != self.agent else None
            t = self.ledger.elapsed()
            node = self.hypotheses.commit_idea(self.agent, code, hypothesis, None, round=next(self._rounds),
                                         revises=revises, reused_from=reused, t_start=t, t_end=t,
                                         tokens_in=self._tokens[0], tokens_out=self._tokens[1],
                                         backend=self.backend)
            self._tokens = [0, 0]
            return ToolResult.of({'node_id': node.node_id, 'branch': own, 'revises': revises,
                                  'reused_from': reused, 'next': 'test it with run_trial(node_id)'}), {}
        return self._gate('propose_policy', {'code': code, 'hypothesis': hypothesis, 'parent': parent,
                                             'branch': branch}, body)

    def run_trial(self, node_id: str, trials: int | None = None, seeds: list[int] | None = None,
                  attempts: int | None = None) -> ToolResult:
        """Run rollouts of one of your nodes on the cell: each rollout resets the cell (verified), then
        gives the policy up to `attempts` in-context attempts (pass@k, no reset between them). Seeds come
        from the experiment's improvement set (default: the next `trials` of them). Results accumulate on
        the node. Returns per rollout the attempt scores, verdict reasons, timings and the trial ids."""
        # 0 and [] are asked for, not defaults: refused below like any other count out of range.
        n = len(seeds) if seeds is not None else (
            trials if trials is not None else self.config.improvement.trials_per_node)
        args = {'node_id': node_id, 'trials': trials, 'seeds': seeds, 'attempts': attempts}

        def body():
            node = self._own_node(node_id)
            if n < 1 or n > 64:
                raise Refused(f'refused: {n} rollouts asked; ask for 1 to 64 per call')
            k = attempts if attempts is not None else self.config.attempts
            if not 1 <= k <= self.config.attempts:
                raise Refused(f'refused: attempts must be 1..{self.config.attempts} (the experiment\'s k)')
            run_seeds = list(seeds) if seeds else self._seed_window(n)
            self._check_seeds(run_seeds)
            why = self.cell.unreachable(self.config.cells[0]) if self.cell is not None else ''
            if why:
                raise CellUnreachable(why)
            outcomes = self.runner.run(self.hypotheses.code(node.node_id), run_seeds,
                                       distribution=self.config.distribution, attempts=k,
                                       steps_per_attempt=self.config.steps_per_attempt,
                                       label=f'{self.agent} {node.node_id[:7]}')
            robot_s = sum(o.reset_s + o.execute_s + o.verify_s for o in outcomes)
            self.ledger.charge(len(outcomes), robot_s)
            records = self.ledger.add_trials(self.agent, node.node_id, outcomes)
            ran = [o for o in outcomes if o.attempt_scores or not o.failure_reason]
            node = self._record_result(node)
            data = {'node_id': node.node_id, 'rollouts': [r.brief() for r in records],
                    'timings_s': {'reset': round(sum(o.reset_s for o in outcomes), 2),
                                  'execute': round(sum(o.execute_s for o in outcomes), 2),
                                  'verify': round(sum(o.verify_s for o in outcomes), 2)},
                    'node': _node_line(node),
                    'not_started': [o.failure_reason for o in outcomes if o not in ran]}
            return ToolResult.of(data), {'trials': len(outcomes), 'robot_s': round(robot_s, 2)}
        return self._gate('run_trial', args, body, trials=n)

    def get_trial(self, trial_id: str) -> ToolResult:
        """One trial in full: per-attempt scores and verdict reasons, timings, the safety events and the
        last frame of each camera (images) from its rosbag."""
        def body():
            record = next((t for t in self.ledger.trials if t.trial_id == trial_id), None)
            if record is None:
                raise Refused(f'no trial {shown(trial_id)}; list_trials shows the ids')
            o = record.outcome
            data = {**record.brief(), 'attempts': [
                {'attempt': i + 1, 'score': round(s, 4), 'success': i + 1 == o.first_success,
                 'reason': o.attempt_reasons[i] if i < len(o.attempt_reasons) else ''}
                for i, s in enumerate(o.attempt_scores)],
                'timings_s': {'reset': o.reset_s, 'execute': o.execute_s, 'verify': o.verify_s}}
            images: list[bytes] = []
            if o.bag_path and self._frames is not None:
                frames, events = self._frames(o.bag_path)
                data['safety_events'] = events
                data['frames'] = [f'{camera}: last frame of the trial' for camera in frames]
                images = list(frames.values())
            else:
                data['safety_events'] = 'not recorded (the trial kept no bag)'
            return ToolResult.of(data, images), {}
        return self._gate('get_trial', {'trial_id': trial_id}, body)

    def list_trials(self, agent: str | None = None, node_id: str | None = None, last: int = 20) -> ToolResult:
        """The latest trials (yours by default; `agent` reads a peer's), newest last."""
        def body():
            who = agent or self.agent
            found = [t for t in self.ledger.trials
                     if t.agent == who and (not node_id or t.node_id == node_id)]
            return ToolResult.of({'agent': who, 'count': len(found),
                                  'trials': [t.brief() for t in found[-max(1, min(last, 200)):]]}), {}
        return self._gate('list_trials', {'agent': agent, 'node_id': node_id, 'last': last}, body)

    def reset_cell(self, seed: int | None = None) -> ToolResult:
        """Reset the cell to a seeded start (an improvement seed; default the next one) and verify it from
        the cameras; returns whether the reset succeeded and its errors."""
        def body():
            cell = self._cell_control()
            run_seed = seed if seed is not None else self._seed_window(1)[0]
            self._check_seeds([run_seed])
            target = self.config.cells[0]
            holding = getattr(self.runner, 'holding', None)     # never reset a cell under a running trial
            with holding(target) if holding else contextlib.nullcontext():
                report = cell.reset(target, self.config.task, run_seed, self.config.distribution)
            self.ledger.charge(0, report.seconds)
            return ToolResult.of({'cell': target, 'seed': run_seed, **report.model_dump()}), \
                {'robot_s': round(report.seconds, 2)}
        return self._gate('reset_cell', {'seed': seed}, body, robot=True)

    def verify(self) -> ToolResult:
        """The cell's current verdict (success, failure or uncertain) fused from its cameras, with the
        per-camera lines and the evidence image."""
        def body():
            report = self._cell_control().verify(self.config.cells[0], self.config.task)
            data = report.model_dump(exclude={'evidence_png'})
            return ToolResult.of(data, [report.evidence_png] if report.evidence_png else []), \
                {'robot_s': round(report.seconds, 2)}
        return self._gate('verify', {}, body, robot=True)

    def discard(self, node_id: str, reason: str) -> ToolResult:
        """Prune one of your nodes as a dead end (it stays in the tree, tagged with the reason)."""
        def body():
            node = self.hypotheses.prune(self._own_node(node_id).node_id, reason)
            self.on_tested(node)
            return ToolResult.of({'node_id': node.node_id, 'pruned': node.pruned}), {}
        return self._gate('discard', {'node_id': node_id, 'reason': reason}, body)

    def read_policy(self, node_id: str) -> ToolResult:
        """The policy source of any node (yours or a peer's), with its hypothesis and result."""
        def body():
            node = self._resolve(node_id)
            return ToolResult.of({**_node_line(node), 'code': self.hypotheses.code(node.node_id)}), {}
        return self._gate('read_policy', {'node_id': node_id}, body)

    def tree(self) -> ToolResult:
        """The hypothesis tree: every agent's nodes with hypothesis, result and status; each agent's best."""
        def body():
            agents = sorted(set(self.hypotheses.agents()) | {self.agent})
            best = {a: (b.node_id if (b := self.hypotheses.best(a)) else None) for a in agents}
            nodes = [_node_line(n) for n in self.hypotheses.nodes()]
            return ToolResult.of({'you': self.agent, 'branch': self.hypotheses.branch(self.agent),
                                  'best': best, 'nodes': nodes}), {}
        return self._gate('tree', {}, body)

    def budget(self) -> ToolResult:
        """What is left of the experiment's budgets: trials, robot time, tokens, wall clock, tool calls."""
        def body():
            return ToolResult.of({'left': self.ledger.left(), 'spent': self.ledger.spent().model_dump(),
                                  'task': self.config.task, 'attempts_k': self.config.attempts,
                                  'trials_per_node': self.config.improvement.trials_per_node,
                                  'chunk': self.config.improvement.chunk,
                                  'early_stop': self.config.improvement.early_stop,
                                  'success_bar': {'k': self.config.success_bar.k,
                                                  'pass_at_k': self.config.success_bar.pass_at_k,
                                                  'pass_at_1': self.config.success_bar.pass_at_1}}), {}
        return self._gate('budget', {}, body)

    # -- pieces -----------------------------------------------------------------------------------------
    def _known(self, node_id: str) -> bool:
        try:
            self._resolve(node_id)
            return True
        except Refused:
            return False

    def _resolve(self, node_id: str) -> TreeNode:
        """A node by id or unambiguous prefix (>= 7 hex digits), of any agent."""
        node_id = (node_id or '').strip()
        hits = [n for n in self.hypotheses.nodes() if len(node_id) >= 7 and n.node_id.startswith(node_id)]
        if len(hits) != 1:
            raise Refused(f'refused: {shown(node_id)} is not a node of this experiment\'s tree '
                          '(tree lists them)')
        return hits[0]

    def _own_node(self, node_id: str) -> TreeNode:
        node = self._resolve(node_id)
        if node.agent != self.agent:
            raise Refused(f'refused: {node.node_id[:7]} is on {node.agent}\'s branch, not yours '
                          f'({self.hypotheses.branch(self.agent)}); propose it on your branch with '
                          f'parent={node.node_id[:7]} to reuse it')
        return node

    def _check_seeds(self, seeds: Sequence[int]) -> None:
        allowed = set(self.config.improvement_seeds())
        outside = [s for s in seeds if s not in allowed]
        if outside:
            pool = self.config.improvement.seeds
            where = f'{pool.start}..{pool.start + pool.count - 1}' if pool.start is not None else 'listed'
            raise Refused(f'refused: seed(s) {outside[:5]} are not improvement seeds of this experiment; '
                          f'agents run only on improvement seeds ({where}), evaluation stays the '
                          'experiment\'s')
        guard.assert_improvement_seeds(seeds, self.config)

    def _own_window(self, n: int) -> list[int]:
        pool = self.config.improvement_seeds()
        out = [pool[(self._cursor + i) % len(pool)] for i in range(n)]
        self._cursor = (self._cursor + n) % len(pool)
        return out

    def _cell_control(self) -> CellControl:
        if self.cell is None:
            raise CellUnreachable('no cell control here (the in-process simulator has no reset or verify '
                                  'service)')
        why = self.cell.unreachable(self.config.cells[0])
        if why:
            raise CellUnreachable(why)
        return self.cell

    def _record_result(self, node: TreeNode) -> TreeNode:
        """The node's result over every rollout it ran (trials that never started, and rollouts with fewer
        attempts than the bar's k, are not counted)."""
        k = self.config.success_bar.k
        outcomes = [t.outcome for t in self.ledger.trials if t.node_id == node.node_id and
                    (t.outcome.attempt_scores or not t.outcome.failure_reason) and t.outcome.attempts >= k]
        at1, atk = metrics.pass_at(outcomes, 1), metrics.pass_at(outcomes, k)
        result = NodeResult(status='evaluated' if outcomes else 'error', trials=len(outcomes), k=k,
                            successes_at_1=at1.successes, successes_at_k=atk.successes, pass_at_1=at1.rate,
                            pass_at_k=atk.rate, mean_score=metrics.mean_best_score(outcomes),
                            failure_reasons=metrics.failure_reasons(outcomes),
                            seeds=[o.seed for o in outcomes], rollouts=list(outcomes))
        node = self.hypotheses.set_result(node.node_id, result, t_end=self.ledger.elapsed())
        self.on_tested(node)
        return node


def _node_line(node: TreeNode) -> dict[str, Any]:
    r = node.result
    line = {'node_id': node.node_id, 'agent': node.agent, 'hypothesis': node.hypothesis,
            'revises': node.revises, 'reused_from': node.reused_from, 'code_sha256': node.code_sha256,
            'result': r.line() if r else 'not evaluated', 'score': round(node.score, 6),
            'pruned': node.pruned}
    if r is not None and r.status == 'evaluated':
        line.update(trials=r.trials, successes_at_1=r.successes_at_1, successes_at_k=r.successes_at_k,
                    pass_at_1=r.pass_at_1, pass_at_k=r.pass_at_k, mean_score=round(r.mean_score, 4),
                    failure_reasons=r.failure_reasons[:4])
    return line


def _errors(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return '; '.join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                         for e in exc.errors())
    return str(exc)


def _arguments_model(fn: Callable) -> type[BaseModel]:
    fields = {name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default)
              for name, p in inspect.signature(fn).parameters.items()}
    return create_model(f'{fn.__name__}_args', __config__={'extra': 'forbid'}, **fields)


def tool_arguments(fn: Callable, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Validate JSON arguments against a tool's signature; raises ValidationError / TypeError."""
    if arguments is not None and not isinstance(arguments, dict):
        raise TypeError(f'arguments must be a JSON object, got {type(arguments).__name__}')
    model = _arguments_model(fn)
    return model.model_validate(arguments or {}).model_dump()


def tool_specs(toolbox: CellToolbox) -> list[dict[str, Any]]:
    """Each tool's name, description (its docstring) and JSON schema of its arguments, for LLM APIs."""
    specs = []
    for name in toolbox.TOOLS:
        fn = getattr(toolbox, name)
        schema = _arguments_model(fn).model_json_schema()
        schema.pop('title', None)
        for prop in schema.get('properties', {}).values():
            prop.pop('title', None)
        specs.append({'name': name, 'description': inspect.getdoc(fn) or name, 'schema': schema})
    return specs
