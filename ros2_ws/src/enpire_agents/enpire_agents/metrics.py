"""The figures the mission asks for, computed from trial outcomes (`enpire_rollout.trial_outcome`; no rclpy,
no I/O).

- pass@k: in ONE rollout the policy gets up to k attempts without a reset; pass@k is the share of
  rollouts whose first success came at attempt <= k. Not best-of-k sampling.
- Wilson score interval for every success rate.
- MRU: per cell, the share of its wall-clock time spent executing policy trials, averaged over cells.
- MTU: team token throughput / (n x one agent's token throughput) on the same task and backend.
- Tokens and time to success: spent until the team first holds a policy that meets the bar.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, Field

from enpire_rollout.trial_outcome import TrialOutcome


class Rate(BaseModel):
    """A success rate with its Wilson interval and the seeds it was measured on."""
    successes: int
    n: int
    rate: float
    low: float
    high: float
    confidence: float = 0.95
    seeds: list[int] = Field(default_factory=list)

    def fmt(self) -> str:
        return f'{self.rate:.3f} [{self.low:.3f}, {self.high:.3f}] ({self.successes}/{self.n})'


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) for n == 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f'need 0 <= successes <= n, got {successes}/{n}')
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval holds p (rounding left 0/6's low at 3e-17 and a plot's error bar negative)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def rate(successes: int, n: int, seeds: Sequence[int] = ()) -> Rate:
    low, high = wilson_interval(successes, n)
    return Rate(successes=successes, n=n, rate=successes / n if n else 0.0, low=low, high=high,
                seeds=list(seeds))


def pass_at(outcomes: Sequence[TrialOutcome], k: int) -> Rate:
    """Share of rollouts that succeeded within their first k attempts (k <= each rollout's attempts)."""
    if k < 1:
        raise ValueError('k must be >= 1')
    short = [o.seed for o in outcomes if o.attempts < k]
    if short:
        raise ValueError(f'pass@{k} needs rollouts with >= {k} attempts; seeds {short[:5]} had fewer')
    wins = sum(o.succeeded_within(k) for o in outcomes)
    return rate(wins, len(outcomes), [o.seed for o in outcomes])


def mean_best_score(outcomes: Sequence[TrialOutcome]) -> float:
    return sum(o.best_score for o in outcomes) / len(outcomes) if outcomes else 0.0


def failure_reasons(outcomes: Sequence[TrialOutcome], limit: int = 5) -> list[str]:
    """The most common reasons of failed attempts (and incomplete trials), most common first."""
    counts: dict[str, int] = {}
    for o in outcomes:
        if o.failure_reason:
            counts[o.failure_reason] = counts.get(o.failure_reason, 0) + 1
        for ok, reason in zip(o.attempt_successes, o.attempt_reasons, strict=False):
            if not ok and reason:
                counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [f'{reason} (x{n})' for reason, n in ranked[:limit]]


class CellTime(BaseModel):
    """Per-cell time accounting over a run (from the rollout scheduler)."""
    cell: str
    wall_s: float                 # the cell's time in the run (first request to end)
    reset_s: float = 0.0
    execute_s: float = 0.0
    verify_s: float = 0.0
    idle_s: float = 0.0
    trials: int = 0

    @property
    def utilization(self) -> float:
        return self.execute_s / self.wall_s if self.wall_s > 0 else 0.0


class RobotUtilization(BaseModel):
    mru: float
    reset_share: float
    verify_share: float
    idle_share: float
    cells: list[CellTime]


def mean_robot_utilization(cells: Sequence[CellTime]) -> RobotUtilization:
    """MRU: execute time over wall time per cell, averaged over cells; reset/verify/idle shares beside."""
    used = [c for c in cells if c.wall_s > 0]
    if not used:
        return RobotUtilization(mru=0.0, reset_share=0.0, verify_share=0.0, idle_share=0.0, cells=list(cells))

    def share(attr: str) -> float:
        return sum(getattr(c, attr) / c.wall_s for c in used) / len(used)

    return RobotUtilization(mru=share('execute_s'), reset_share=share('reset_s'),
                            verify_share=share('verify_s'), idle_share=share('idle_s'), cells=list(cells))


def token_throughput(tokens: int, wall_s: float) -> float:
    return tokens / wall_s if wall_s > 0 else 0.0


def mean_token_utilization(team_tokens: int, team_wall_s: float, n_agents: int,
                           single_tokens: int, single_wall_s: float) -> float | None:
    """MTU = team throughput / (n x single-agent throughput); None when the single-agent run is missing."""
    single = token_throughput(single_tokens, single_wall_s)
    if n_agents < 1 or single <= 0:
        return None
    return token_throughput(team_tokens, team_wall_s) / (n_agents * single)


class ProgressPoint(BaseModel):
    """One moment of a run: time since start, cumulative tokens, and whether the bar is held."""
    t_s: float
    tokens: int
    team_success: float = 0.0
    team_score: float = 0.0       # the same average over the agents' best mean task score
    at_bar: bool = False


def first_at_bar(points: Sequence[ProgressPoint]) -> ProgressPoint | None:
    for point in sorted(points, key=lambda p: p.t_s):
        if point.at_bar:
            return point
    return None


def time_to_success(points: Sequence[ProgressPoint]) -> float | None:
    hit = first_at_bar(points)
    return hit.t_s if hit else None


def tokens_to_success(points: Sequence[ProgressPoint]) -> int | None:
    hit = first_at_bar(points)
    return hit.tokens if hit else None
