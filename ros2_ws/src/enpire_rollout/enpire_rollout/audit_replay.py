"""`enpire audit --replay BAG|DIR`: re-run a simulated cell's trial from its bag and re-judge its verdicts.

Same initial state + same commands -> same states. From the bag alone: the task (the metadata's `task`,
found through the task registry), the privileged initial state (the simulator's truth after the reset,
`<cell>/privileged/ground_truth`: the task-state vector and the tool), every command that reached the cell
(`cmd/target`) and every cell state. The trial is re-run through the task's replay model
(`Task.extras['replay']`, the simulated cell's own physics); each recorded state must match the replayed
one, and each state's commanded vector must be a recorded command (a command missing from the bag shows as
a mismatch). Every recorded verdict is paired with the step of the frames it judged (the cell state with
the verdict's stamp) and re-judged with the task's own rule on the replayed state. Where the task names an
independent reference (`Task.extras['reference_replay']`, e.g. the unmodified upstream environment) and it
is installed, the same commands also run through it, as a second opinion.

A SUCCESS verdict where the rule says no is a false success; it, a state mismatch or a bag that cannot be
replayed makes the exit status non-zero. UNCERTAIN or FAILURE where the rule says yes is listed (the
verifier errs on that side by design) but does not fail the audit.

The replay protocol (`ReplayModel`), in the vectors the generic messages carry: built from
`(task_state, tool)`, `step(action)`, `tool()` = the tool's (x, y, z, vx, vy, vz) as a CellState reports
them, `state()` = the full simulator state (compared with the reference's), `judge()` = (score, success).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from enpire_common import messages, names, task_registry
from pydantic import BaseModel, Field
from rosbags.rosbag2 import Reader

from enpire_rollout.trial_bag import METADATA_TOPIC, typestore

LOST_WINDOW = 4         # a command the cell tracks must be among the next few recorded ones
POSITION_TOL = 1e-9     # the replay runs the same physics with the same floats: any difference is real
STATE_NAMES = {0: 'SUCCESS', 1: 'FAILURE', 2: 'UNCERTAIN'}


class ReplayModel(Protocol):
    def step(self, action) -> None: ...
    def task_state(self) -> tuple[float, ...]: ...
    def tool(self) -> tuple[float, ...]: ...
    def state(self) -> list[float] | None: ...
    def judge(self) -> tuple[float, bool]: ...


class VerdictCheck(BaseModel):
    index: int
    step: int | None            # the step of the frames judged (None: the stamp matches no cell state)
    recorded: str               # SUCCESS | FAILURE | UNCERTAIN
    recorded_score: float
    true_score: float | None    # the task's score of the replayed state
    true_success: bool = False  # the task's own rule on the replayed state
    reference_score: float | None = None
    kind: str = ''              # '' | false_success | missed_success | no_step


class ReplayReport(BaseModel):
    bag: str
    task: str = ''
    steps: int = 0
    commands: int = 0
    lost_commands: int = 0      # recorded on cmd/target, never applied by the cell (reported, not a mismatch)
    max_state_error: float = 0.0
    reference_checked: bool = False
    mismatches: list[str] = Field(default_factory=list)
    verdicts: list[VerdictCheck] = Field(default_factory=list)
    # Per attempt (its closing verdict, from the `attempt_verified` events): the recorded success and
    # the task's rule at the step that verdict judged.
    attempt_recorded: list[bool] = Field(default_factory=list)
    attempt_true: list[bool] = Field(default_factory=list)
    error: str = ''             # the bag cannot be replayed

    @property
    def false_successes(self) -> int:
        return sum(v.kind == 'false_success' for v in self.verdicts)

    @property
    def ok(self) -> bool:
        return not self.error and not self.mismatches and not self.false_successes \
            and not any(v.kind == 'no_step' for v in self.verdicts)


@dataclass
class _Recorded:
    task: str = ''
    truth: tuple | None = None                                 # stamp, task state, tool
    states: list[tuple] = field(default_factory=list)          # stamp, step, tool (xyz, vxyz), commanded
    commands: list[tuple] = field(default_factory=list)        # stamp, action vector
    verdicts: list[tuple[int, int, float]] = field(default_factory=list)   # stamp, state, score
    attempts: list[tuple[int, bool]] = field(default_factory=list)         # attempt_verified: stamp, success


def _ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def read_recorded(bag: Path) -> _Recorded:
    store = typestore()
    out = _Recorded()
    reset_done = False
    with Reader(bag) as reader:
        for conn, _t, raw in reader.messages():
            topic = conn.topic
            if topic == METADATA_TOPIC:
                out.task = str(json.loads(store.deserialize_cdr(raw, conn.msgtype).data).get('task') or '')
            elif topic.endswith('/' + names.GROUND_TRUTH) and not reset_done:
                # The trial's initial state: the last placement (step 0) before the reset was done (a reset
                # may place several times; the recorder keeps every placement's truth).
                m = store.deserialize_cdr(raw, conn.msgtype)
                if m.step == 0:
                    out.truth = (_ns(m.header.stamp), messages.vector(m.task_state), messages.vector(m.tool))
            elif topic.endswith('/' + names.CELL_STATE):
                m = store.deserialize_cdr(raw, conn.msgtype)
                out.states.append((_ns(m.header.stamp), int(m.step),
                                   (*messages.tool_position(m), *messages.tool_velocity(m)),
                                   messages.vector(m.commanded)))
            elif topic.endswith('/' + names.CELL_COMMAND):
                m = store.deserialize_cdr(raw, conn.msgtype)
                out.commands.append((_ns(m.header.stamp), messages.vector(m.values)))
            elif topic.endswith('/trial/verdicts'):
                m = store.deserialize_cdr(raw, conn.msgtype)
                out.verdicts.append((_ns(m.header.stamp), int(m.state), float(m.score)))
            elif topic.endswith('/' + names.TRIAL_EVENTS):
                m = store.deserialize_cdr(raw, conn.msgtype)
                reset_done = reset_done or m.event == 'reset_done'
                if m.event == 'attempt_verified':
                    out.attempts.append((_ns(m.header.stamp), bool(json.loads(m.detail).get('success'))))
    return out


def _models(task_name: str, task_state, tool, reference_check: bool):
    """(the task's replay model, its reference or None, whether the reference ran)."""
    task = task_registry.get(task_name)
    if 'replay' not in task.extras:
        raise LookupError(f'task {task_name!r} names no replay model (Task.extras["replay"])')
    model = task.load('replay')(task_state, tool)
    reference = None
    if reference_check and 'reference_replay' in task.extras:
        try:
            reference = task.load('reference_replay')(task_state, tool)
        except ImportError:
            reference = None
    return model, reference


def replay_bag(bag: str | Path, reference_check: bool = True) -> ReplayReport:
    bag = Path(bag)
    report = ReplayReport(bag=bag.name)
    rec = read_recorded(bag)
    report.task = rec.task
    if rec.truth is None:
        report.error = 'no privileged initial state in the bag (not a simulated cell, or recorded before it)'
        return report
    if not rec.task:
        report.error = 'the bag names no task in its metadata'
        return report
    t0, task_state, tool = rec.truth
    try:
        model, reference = _models(rec.task, task_state, tool, reference_check)
    except (LookupError, ValueError) as exc:
        report.error = f'cannot replay: {exc}'
        return report
    report.reference_checked = reference is not None
    placed = model.task_state()
    if len(placed) != len(task_state) or \
            max(abs(a - b) for a, b in zip(placed, task_state, strict=True)) > POSITION_TOL:
        report.mismatches.append(f'placement: the recorded task state {task_state} is not at rest ({placed})')
    judged = {0: model.judge()}
    reference_score = {0: reference.judge()[0]} if reference else {}
    step_at: dict[int, int] = {}
    commands = [c for c in rec.commands if c[0] >= t0]
    report.commands = len(commands)
    states = sorted(st for st in rec.states if st[0] >= t0)
    # Before the first command the cell tracks what it was placed with (its step-0 `commanded`).
    next_cmd, action = 0, next((st[3] for st in states if st[1] == 0), None)
    step = 0
    for stamp, s, recorded_tool, target in states:
        step_at.setdefault(stamp, s)
        if s == step:
            continue
        if s != step + 1:
            report.mismatches.append(f'step {s}: expected step {step + 1} (a cell state is missing)')
            break
        ahead = [i for i in range(next_cmd, min(next_cmd + LOST_WINDOW, len(commands)))
                 if commands[i][1] == target]
        if ahead:
            # Commands skipped over were published to the cell but never applied (lost on the way,
            # e.g. before the cell's subscription matched): the states follow from the rest.
            report.lost_commands += ahead[0] - next_cmd
            action, next_cmd = target, ahead[0] + 1
        elif target != action:
            report.mismatches.append(f'step {s}: the cell tracked {target}, a command that is not in the bag')
            action = target
        model.step(action)
        step = s
        replayed = model.tool()
        error = max((abs(a - b) for a, b in zip(replayed, recorded_tool, strict=True)), default=math.inf) \
            if len(replayed) == len(recorded_tool) else math.inf
        report.max_state_error = max(report.max_state_error, error)
        if error > POSITION_TOL or not math.isfinite(error):
            report.mismatches.append(f'step {s}: recorded tool {recorded_tool}, replayed {replayed}')
        judged[s] = model.judge()
        if reference is not None:
            reference.step(action)
            reference_score[s] = reference.judge()[0]
            if reference.state() != model.state():
                report.mismatches.append(f'step {s}: the reference {reference.state()} differs from the '
                                         f'replay {model.state()}')
                reference = None
    report.steps = step
    if next_cmd < len(commands):
        report.mismatches.append(f'{len(commands) - next_cmd} recorded command(s) after step {step} never '
                                 'show in a recorded state')
    for index, (stamp, state, score) in enumerate(rec.verdicts):
        s = step_at.get(stamp)
        truth = judged.get(s) if s is not None else None
        check = VerdictCheck(index=index, step=s, recorded=STATE_NAMES.get(state, str(state)),
                             recorded_score=score, true_score=truth[0] if truth else None,
                             true_success=bool(truth and truth[1]),
                             reference_score=reference_score.get(s) if s is not None else None)
        if truth is None:
            check.kind = 'no_step'
        elif state == 0 and not check.true_success:
            check.kind = 'false_success'
        elif state != 0 and check.true_success:
            check.kind = 'missed_success'
        report.verdicts.append(check)
    # An attempt's verdict is the last one recorded at or before its `attempt_verified` event.
    for stamp, success in rec.attempts:
        closing = [v for v, (t, _, _) in zip(report.verdicts, rec.verdicts, strict=True) if t <= stamp]
        report.attempt_recorded.append(success)
        report.attempt_true.append(bool(closing) and closing[-1].true_success)
    return report


def find_bags(path: str | Path) -> list[Path]:
    root = Path(path)
    if (root / 'metadata.yaml').exists():
        return [root]
    return sorted(p.parent for p in root.rglob('metadata.yaml'))


def main_replay(path: str, reference_check: bool = True) -> int:
    bags = find_bags(path)
    if not bags:
        print(f'no trial bags under {path}')
        return 2
    reports = []
    print(f"{'bag':44s} {'steps':>5s} {'cmds':>5s} {'verdicts':>8s} {'state err':>9s} {'ref':>3s} result")
    for bag in bags:
        r = replay_bag(bag, reference_check)
        reports.append(r)
        result = 'ok' if r.ok else (r.error or '; '.join(r.mismatches[:2])
                                    or f'{r.false_successes} false success(es)')
        if r.lost_commands:
            result += f' ({r.lost_commands} recorded command(s) never applied by the cell)'

        print(f'{r.bag[:44]:44s} {r.steps:5d} {r.commands:5d} {len(r.verdicts):8d} {r.max_state_error:9.1e} '
              f"{'yes' if r.reference_checked else 'no':>3s} {result}")
    rows = [(r.bag, v) for r in reports for v in r.verdicts if v.kind]
    if rows:
        print("\ndisagreements with the task's rule:")
        print(f"{'bag':44s} {'#':>3s} {'step':>5s} {'recorded':>9s} {'score':>6s} {'true':>8s} "
              f"{'ref':>8s} kind")
        for bag, v in rows:
            ref = f'{v.reference_score:8.4f}' if v.reference_score is not None else f"{'-':>8s}"
            true = f'{v.true_score:8.4f}' if v.true_score is not None else f"{'-':>8s}"
            step = str(v.step) if v.step is not None else '-'
            print(f'{bag[:44]:44s} {v.index:3d} {step:>5s} {v.recorded:>9s} {v.recorded_score:6.3f} {true} '
                  f'{ref} {v.kind}')
    verdicts = sum(len(r.verdicts) for r in reports)
    false = sum(r.false_successes for r in reports)
    missed = sum(v.kind == 'missed_success' for _, v in rows)
    mismatched = sum(bool(r.mismatches) for r in reports)
    failed = sum(bool(r.error) for r in reports)
    lost = sum(r.lost_commands for r in reports)
    print(f'trials {len(reports)} (replayed {len(reports) - failed}, states mismatched in {mismatched}'
          f'{f", {lost} recorded command(s) never applied" if lost else ""}), verdicts {verdicts}, '
          f'disagreements {len(rows)} (false successes {false}, successes judged UNCERTAIN/FAILURE {missed})')
    return 0 if all(r.ok for r in reports) else 1
