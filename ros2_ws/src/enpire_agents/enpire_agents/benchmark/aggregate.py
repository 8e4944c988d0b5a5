"""A run's figures from its TeamResult, and the figures of a configuration over its repeats (no rclpy).

- time to success: when the team first holds a policy meeting the bar on its improvement trials (the
  first such idea's end on the research-progress curve); tokens to success: the team's tokens then.
- MRU per run from the cells' time accounting; MTU per run against the mean token throughput of the
  single-agent runs of the same task, backend and pacing in the matrix (MISSION.md).
- Over repeats: the share of runs reaching the bar (Wilson), time to success as a median (runs that
  did not reach the bar count as later than the cap) with min..max and a mean with its 95% t interval
  over the runs that did, and the curves resampled on one time grid with a percentile band.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from enpire_agents import metrics
from enpire_agents.benchmark.matrix import RunSpec
from enpire_agents.experiment import SuccessBar
from enpire_agents.metrics import Rate
from enpire_agents.team import TeamResult

# two-sided 95% Student t quantiles by degrees of freedom (beyond 30: the normal's 1.96)
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


class ReplayStats(BaseModel):
    """How a replayed run followed its transcripts."""
    exchanges: int = 0
    prompt_mismatches: int = 0           # requests whose digest differed from the recorded one
    stopped_agents: list[str] = Field(default_factory=list)   # transcript exhausted or out of order


class RunRecord(BaseModel):
    """One finished (or failed) run of the matrix, as the JSON keeps it."""
    spec: RunSpec
    status: Literal['done', 'failed']
    error: str = ''
    replayed: bool = False
    replay: ReplayStats | None = None
    wall_s: float = 0.0                  # the run's length on its time axis (spec.time_axis)
    run_wall_s: float = 0.0              # the run's wall-clock time
    thinking_wall_s: float = 0.0         # the agents' wall time in their backends, summed
    stop_reason: str = ''
    reached_bar: bool = False            # on improvement trials, within the cap
    time_to_success_s: float | None = None
    tokens_to_success: int | None = None
    confirmed_held_out: bool | None = None   # None: held-out confirmation off
    tokens: int = 0
    trials: int = 0
    ideas: int = 0
    mru: float | None = None
    reset_share: float | None = None
    idle_share: float | None = None
    token_throughput: float = 0.0        # tokens per second of the run
    mtu: float | None = None             # filled in over the matrix (needs the single-agent runs)
    curve: list[tuple[float, float]] = Field(default_factory=list)   # (t_s, team-average success)
    run_dir: str = ''
    report_html: str = ''


def first_at_bar(result: TeamResult, bar: SuccessBar) -> tuple[float, int] | None:
    """(time, team tokens) when the first idea meeting the bar on its improvement trials ended."""
    hits = [n for n in result.nodes if n.status == 'evaluated' and n.pass_at_k >= bar.pass_at_k
            and n.pass_at_1 >= bar.pass_at_1]
    if not hits:
        return None
    t = min(n.t_end for n in hits)
    tokens = max((p.tokens for p in result.progress if p.t_s <= t + 1e-9), default=0)
    return t, tokens


def run_record(spec: RunSpec, result: TeamResult, bar: SuccessBar, *, replayed: bool = False,
               replay: ReplayStats | None = None, run_dir: str = '', report_html: str = '') -> RunRecord:
    hit = first_at_bar(result, bar)
    util = result.utilization
    points = sorted(result.progress, key=lambda p: p.t_s)
    curve = [(round(p.t_s, 3), round(p.team_success, 4)) for p in points]
    return RunRecord(
        spec=spec, status='done', replayed=replayed, replay=replay, wall_s=result.wall_s,
        run_wall_s=result.run_wall_s, thinking_wall_s=round(sum(result.thinking_wall_s.values()), 3),
        stop_reason=result.stop_reason, reached_bar=hit is not None,
        time_to_success_s=hit[0] if hit else None, tokens_to_success=hit[1] if hit else None,
        confirmed_held_out=result.reached_bar if bar.held_out_confirmation else None,
        tokens=result.tokens, trials=result.trials, ideas=len(result.nodes),
        mru=util.mru if util else None, reset_share=util.reset_share if util else None,
        idle_share=util.idle_share if util else None,
        token_throughput=metrics.token_throughput(result.tokens, result.wall_s),
        curve=curve, run_dir=run_dir, report_html=report_html)


def with_mtu(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Each finished run's MTU against the team-of-1 runs of its task, backend and pacing (their tokens
    over their wall clock, pooled over repeats)."""
    singles: dict[tuple[str, str, str], tuple[int, float]] = {}
    for r in records:
        if r.status == 'done' and r.spec.team_size == 1:
            key = (r.spec.task, r.spec.backend, r.spec.pacing)
            tokens, wall = singles.get(key, (0, 0.0))
            singles[key] = (tokens + r.tokens, wall + r.wall_s)
    out = []
    for r in records:
        single = singles.get((r.spec.task, r.spec.backend, r.spec.pacing))
        mtu = None
        if r.status == 'done' and single is not None:
            mtu = metrics.mean_token_utilization(r.tokens, r.wall_s, r.spec.team_size, *single)
        out.append(r.model_copy(update={'mtu': mtu}))
    return out


class Spread(BaseModel):
    """A figure over repeats: mean, median, min..max and the mean's 95% t interval (None with one value)."""
    n: int
    mean: float | None = None
    median: float | None = None
    low: float | None = None
    high: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    def fmt(self, digits: int = 1, unit: str = '') -> str:
        if not self.n:
            return '-'
        text = f'{self.mean:.{digits}f}{unit}'
        if self.n > 1:
            text += f' [{self.low:.{digits}f}, {self.high:.{digits}f}]'
        return text


def spread(values: Sequence[float | None]) -> Spread:
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return Spread(n=0)
    mean = statistics.fmean(xs)
    ci = (None, None)
    if len(xs) > 1:
        t95 = _T95[len(xs) - 2] if len(xs) - 1 <= len(_T95) else 1.96
        half = t95 * statistics.stdev(xs) / math.sqrt(len(xs))
        ci = (mean - half, mean + half)
    return Spread(n=len(xs), mean=mean, median=statistics.median(xs), low=min(xs), high=max(xs),
                  ci_low=ci[0], ci_high=ci[1])


def censored_median(times: Sequence[float | None], cap_s: float) -> float | None:
    """Median time to success where a run without success counts as later than the cap; None when the
    median run did not succeed (the median is then beyond the cap)."""
    if not times:
        return None
    ordered = sorted(math.inf if t is None else float(t) for t in times)
    n = len(ordered)
    middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return None if math.isinf(middle) or middle > cap_s else middle


class Curve(BaseModel):
    """Team-average success on a common time grid over repeats: mean line and a percentile band."""
    t_s: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    band: tuple[float, float]


def resample(curve: Sequence[tuple[float, float]], grid: np.ndarray) -> np.ndarray:
    """A step curve (value holds until the next point, and after the last) sampled at `grid`."""
    if not curve:
        return np.zeros_like(grid, dtype=float)
    pts = sorted(curve)
    ts = np.array([p[0] for p in pts])
    vs = np.array([p[1] for p in pts])
    index = np.searchsorted(ts, grid, side='right') - 1
    return np.where(index >= 0, vs[np.clip(index, 0, None)], 0.0)


def band_curve(curves: Sequence[Sequence[tuple[float, float]]], t_end: float, band=(0.0, 100.0),
               points: int = 200) -> Curve:
    grid = np.linspace(0.0, max(t_end, 1e-6), points)
    stack = np.array([resample(c, grid) for c in curves]) if curves else np.zeros((1, points))
    return Curve(t_s=grid.round(3).tolist(), mean=stack.mean(axis=0).round(4).tolist(),
                 low=np.percentile(stack, band[0], axis=0).round(4).tolist(),
                 high=np.percentile(stack, band[1], axis=0).round(4).tolist(), band=tuple(band))


class GroupSummary(BaseModel):
    """One configuration (task, backend, team size, cells, pacing) over its repeats."""
    task: str
    backend: str
    team_size: int
    cells: int
    pacing: str
    runs: int
    failed_runs: int
    replayed: bool
    reached: Rate                                   # share of runs reaching the bar within the cap
    time_to_success_median_s: float | None          # censored at the cap (None: median run did not succeed)
    time_to_success: Spread                         # over the runs that reached the bar
    tokens_to_success: Spread
    mru: Spread
    mtu: Spread
    trials: Spread
    tokens: Spread
    cap_s: float
    curve: Curve


def summarise(records: Sequence[RunRecord], band=(0.0, 100.0)) -> list[GroupSummary]:
    """Per configuration, in the matrix's order; failed runs are counted, not averaged."""
    groups: dict[tuple, list[RunRecord]] = {}
    for r in records:
        groups.setdefault(r.spec.group, []).append(r)
    out = []
    for (task, backend, size, cells, pacing), runs in groups.items():
        done = [r for r in runs if r.status == 'done']
        cap = max(r.spec.cap_s for r in runs)
        reached = [r for r in done if r.reached_bar]
        out.append(GroupSummary(
            task=task, backend=backend, team_size=size, cells=cells, pacing=pacing, runs=len(runs),
            failed_runs=len(runs) - len(done), replayed=any(r.replayed for r in done),
            reached=metrics.rate(len(reached), len(done), [r.spec.seed for r in done]),
            time_to_success_median_s=censored_median([r.time_to_success_s for r in done], cap),
            time_to_success=spread([r.time_to_success_s for r in reached]),
            tokens_to_success=spread([r.tokens_to_success for r in reached]),
            mru=spread([r.mru for r in done]), mtu=spread([r.mtu for r in done]),
            trials=spread([r.trials for r in done]), tokens=spread([r.tokens for r in done]), cap_s=cap,
            curve=band_curve([r.curve for r in done], max([cap] + [r.wall_s for r in done]), band)))
    return out


def closing_note(groups: Sequence[GroupSummary]) -> list[str]:
    """Per task and backend: time to success, MRU and MTU per team size; does time fall as the team grows."""
    lines = []
    by_column: dict[tuple[str, str, str], list[GroupSummary]] = {}
    for g in groups:
        by_column.setdefault((g.task, g.backend, g.pacing), []).append(g)
    for (task, backend, pacing), column in by_column.items():
        column = sorted(column, key=lambda g: (g.team_size, g.cells))
        parts = []
        for g in column:
            median = (f'{g.time_to_success_median_s:.0f} s' if g.time_to_success_median_s is not None
                      else 'not reached')
            parts.append(f'team {g.team_size} on {g.cells} cell(s): time to success median {median} '
                         f'({g.reached.successes}/{g.reached.n} reached), MRU {g.mru.fmt(3)}, '
                         f'MTU {g.mtu.fmt(2)}')
        replayed = ' (replayed)' if any(g.replayed for g in column) else ''
        lines.append(f'{task} / {backend} / {pacing}{replayed}: ' + '; '.join(parts) + '.')
        lines.append(f'{task} / {backend}: {trend(column)}')
    return lines


def trend(column: Sequence[GroupSummary]) -> str:
    """Whether the median time to success falls as the team grows (censored medians count as > cap)."""
    column = sorted(column, key=lambda g: g.team_size)
    if len({g.team_size for g in column}) < 2:
        return 'one team size only: no trend to read.'
    times = [g.time_to_success_median_s if g.time_to_success_median_s is not None else math.inf
             for g in column]
    sizes = [g.team_size for g in column]
    if all(math.isinf(t) for t in times):
        return 'no team size reached the bar in its median run: no trend to read.'
    falls = all(b < a or (math.isinf(a) and math.isinf(b)) for a, b in zip(times, times[1:], strict=False))
    shown = ', '.join(f'{n}: {"not reached" if math.isinf(t) else f"{t:.0f} s"}'
                      for n, t in zip(sizes, times, strict=True))
    if falls:
        return f'time to success falls as the team grows ({shown}).'
    return f'time to success does not fall monotonically with team size ({shown}).'


def headline(groups: Sequence[GroupSummary]) -> dict[str, object]:
    """The one-line figures per team size of the first task, backend and pacing in the matrix:
    `reached_<n>` (runs that reached the bar), `median_time_to_success_s_<n>` (censored at the cap: None
    when the median run did not reach it), `mru_<n>`, `mtu_<n>` (team sizes above 1), `tokens_<n>`
    (median tokens to success over the runs that reached the bar), and `speedup_<a>_to_<b>` (the
    smallest team's median time over the largest's)."""
    if not groups:
        return {}
    first = groups[0]
    column = sorted((g for g in groups if (g.task, g.backend, g.pacing) == (first.task, first.backend,
                                                                          first.pacing)),
                    key=lambda g: g.team_size)
    out: dict[str, object] = {'task': first.task, 'backend': first.backend, 'pacing': first.pacing}
    for g in column:
        n = g.team_size
        out[f'reached_{n}'] = g.reached.successes
        out[f'runs_{n}'] = g.runs
        out[f'median_time_to_success_s_{n}'] = (round(g.time_to_success_median_s, 1)
                                                if g.time_to_success_median_s is not None else None)
        out[f'mru_{n}'] = round(g.mru.mean, 3) if g.mru.n else None
        if n > 1:
            out[f'mtu_{n}'] = round(g.mtu.mean, 3) if g.mtu.n else None
        out[f'tokens_{n}'] = round(g.tokens_to_success.median) if g.tokens_to_success.n else None
    small, large = column[0], column[-1]
    if small is not large:
        a, b = small.time_to_success_median_s, large.time_to_success_median_s
        out[f'speedup_{small.team_size}_to_{large.team_size}'] = round(a / b, 2) if a and b else None
    return out
