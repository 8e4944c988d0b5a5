"""Ground-truth pass@k of recorded rollouts: PRIVILEGED simulator truth, printed beside the verdicts' pass@k
so any gap shows; it never reaches an agent.

Each rollout's bag is replayed (`enpire_rollout.audit_replay`): an attempt truly succeeded when the task's
own rule (`Task.success_rule`) holds at the step its closing verdict judged. A verdict SUCCESS
where the rule says no is counted as a false success.
"""
from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from enpire_agents import metrics
from enpire_agents.metrics import Rate
from enpire_rollout.trial_outcome import TrialOutcome


class GroundTruth(BaseModel):
    k: int
    pass_at_1: Rate
    pass_at_k: Rate
    false_successes: int           # attempts the verdicts called SUCCESS that the task's rule says are not
    missed_successes: int          # attempts truly successful that the verdicts did not call SUCCESS
    not_replayed: int              # rollouts without a replayable bag (not counted above)
    state_mismatches: int          # bags whose recorded states the replay did not reproduce

    def fmt(self) -> str:
        return (f'pass@1 {self.pass_at_1.fmt()}, pass@{self.k} {self.pass_at_k.fmt()}; verdict SUCCESS where '
                f'the rule says no: {self.false_successes}, true successes not called: '
                f'{self.missed_successes}' + (f'; {self.not_replayed} rollout(s) without a replayable bag'
                                              if self.not_replayed else '')
                + (f'; STATE MISMATCH in {self.state_mismatches} bag(s)' if self.state_mismatches else ''))


def ground_truth(bag_paths: Sequence[str], seeds: Sequence[int], k: int) -> GroundTruth | None:
    """The same rollouts judged by the task's rule from their bags; None when none was recorded."""
    from enpire_rollout.audit_replay import replay_bag

    outcomes, missing, false, missed, mismatched = [], 0, 0, 0, 0
    for bag, seed in zip(bag_paths, seeds, strict=True):
        report = replay_bag(bag, reference_check=False) if bag else None
        if report is None or report.error:
            missing += 1
            continue
        mismatched += bool(report.mismatches)
        false += sum(r and not t for r, t in zip(report.attempt_recorded, report.attempt_true, strict=True))
        missed += sum(t and not r for r, t in zip(report.attempt_recorded, report.attempt_true, strict=True))
        outcomes.append(TrialOutcome(seed=seed, attempts=max(k, len(report.attempt_true)),
                                     attempt_successes=report.attempt_true))
    if not outcomes:
        return None
    return GroundTruth(k=k, pass_at_1=metrics.pass_at(outcomes, 1), pass_at_k=metrics.pass_at(outcomes, k),
                       false_successes=false, missed_successes=missed, not_replayed=missing,
                       state_mismatches=mismatched)
