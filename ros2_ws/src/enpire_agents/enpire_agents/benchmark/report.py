"""The matrix's results: one JSON file, one comparison plot, one self-contained HTML page (no rclpy).

The plot has one row per task: the research-progress curves (team-average success against wall clock,
mean over repeats with a percentile band; colour = team size, line style = backend), time to success
per team size (each run a dot, runs that did not reach the bar drawn at the cap as triangles, the
median as a bar), and MRU and MTU per team size (mean with min..max).
"""
from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from enpire_agents.benchmark import aggregate  # noqa: E402
from enpire_agents.benchmark.aggregate import GroupSummary, RunRecord  # noqa: E402
from enpire_agents.benchmark.matrix import Matrix, MatrixConfig  # noqa: E402
from enpire_agents.report import html_table  # noqa: E402

_STYLES = ['-', '--', ':', '-.']


class BenchResults(BaseModel):
    """Everything `enpire bench` knows about a matrix: its config, every run, the figures over repeats."""
    name: str
    matrix_path: str
    experiment_path: str
    matrix: MatrixConfig
    runs_planned: int
    runs: list[RunRecord] = Field(default_factory=list)
    groups: list[GroupSummary] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    closing_note: list[str] = Field(default_factory=list)
    updated_unix: float = 0.0


class BenchPaths(BaseModel):
    json_path: str
    png: str
    html: str


def build(matrix: Matrix, records: list[RunRecord]) -> BenchResults:
    cfg = matrix.config
    records = aggregate.with_mtu(records)
    groups = aggregate.summarise(records, cfg.band_percentiles)
    notes = [
        f'Pacing {cfg.pacing}: the simulated cells step '
        + ('at 10 Hz in real time, as robots do.' if cfg.pacing == 'real_time' else 'as fast as they can.'),
        f'Each run is capped at {cfg.wall_clock_cap_s:.0f} s of wall clock'
        + (f' and {cfg.time_cap_s or cfg.wall_clock_cap_s:.0f} s on the fleet clock'
           if cfg.time_axis == 'fleet' else '')
        + f'; {cfg.repeats} repeat(s) per configuration (repeat r uses backend seed seed + r).',
        ('Times are on the fleet clock: each trial holds its cell for its cell-time (sim) duration, starts '
         'when its idea exists and its cell is free, and a team\'s elapsed time is the latest finish it '
         'waited on (a fleet of real cells running the same trials in parallel); the agents\' thinking '
         'is wall time, reported per run apart.') if cfg.time_axis == 'fleet' else
        'Times are on the wall clock.',
        ('Time to success is when the team first holds a policy meeting the success bar on its improvement '
         'trials; held-out confirmation is OFF (a run stops there, unconfirmed on held-out seeds).')
        if not cfg.held_out_confirmation else
        ('Time to success is when the team first holds a policy meeting the success bar on its improvement '
         'trials; held-out confirmation is ON (the confirmed bar is reported per run).'),
        'MTU: a team\'s token throughput over n x the team-of-1 throughput of the same task, backend and '
        'pacing in this matrix.',
        f'Curves: mean over repeats, band {cfg.band_percentiles[0]:g}th..{cfg.band_percentiles[1]:g}th '
        'percentile; after a run ends its last value is held.',
    ]
    replayed = [r for r in records if r.replayed]
    if replayed:
        notes.insert(0, f'REPLAYED: {len(replayed)} run(s) served their LLM replies from recorded '
                        'transcripts (no key, no network); marked replayed.')
    failed = [r for r in records if r.status == 'failed']
    if failed:
        notes.append(f'{len(failed)} run(s) failed and are not averaged: '
                     + '; '.join(f'{r.spec.run_id}: {r.error}' for r in failed))
    return BenchResults(name=cfg.name, matrix_path=str(matrix.path),
                        experiment_path=str(matrix.experiment_path), matrix=cfg,
                        runs_planned=len(matrix.runs()), runs=records, groups=groups, notes=notes,
                        closing_note=aggregate.closing_note(groups), updated_unix=time.time())


def _time_scale(results: BenchResults) -> tuple[float, str]:
    t_end = max([g.curve.t_s[-1] for g in results.groups] + [1.0])
    return (60.0, 'min') if t_end > 180 else (1.0, 's')


def plot(results: BenchResults, path: str | Path) -> Path:
    path = Path(path)
    tasks = list(dict.fromkeys(g.task for g in results.groups)) or ['(no runs yet)']
    backends = list(dict.fromkeys(g.backend for g in results.groups))
    sizes = sorted({g.team_size for g in results.groups})
    colours = {n: plt.get_cmap('viridis')(i / max(1, len(sizes) - 1) * 0.85) for i, n in enumerate(sizes)}
    scale, unit = _time_scale(results)
    fig, axes = plt.subplots(len(tasks), 3, figsize=(17, 4.8 * len(tasks)), squeeze=False,
                             gridspec_kw={'width_ratios': [2.2, 1, 1]})
    for row, task in enumerate(tasks):
        ax_curve, ax_time, ax_util = axes[row]
        groups = [g for g in results.groups if g.task == task]
        for g in groups:
            xs = [t / scale for t in g.curve.t_s]
            style = _STYLES[backends.index(g.backend) % len(_STYLES)]
            label = f'{g.backend}, team {g.team_size} on {g.cells} cell(s) (n={g.runs - g.failed_runs})' + \
                (' [replayed]' if g.replayed else '')
            ax_curve.plot(xs, g.curve.mean, style, color=colours[g.team_size], lw=2, label=label,
                          drawstyle='steps-post')
            ax_curve.fill_between(xs, g.curve.low, g.curve.high, step='post', color=colours[g.team_size],
                                  alpha=0.15)
        ax_curve.set_ylim(-0.03, 1.05)
        ax_curve.set_xlabel(f'wall clock ({unit})')
        ax_curve.set_ylabel('team-average success (pass@k, improvement trials)')
        ax_curve.set_title(f'{task}: research progress (mean over repeats, band over repeats)', fontsize=10)
        ax_curve.grid(alpha=0.3)
        if groups:
            ax_curve.legend(fontsize=8, loc='upper left')
        offsets = {b: (i - (len(backends) - 1) / 2) * 0.15 for i, b in enumerate(backends)}
        for g in groups:
            runs = [r for r in results.runs if r.status == 'done' and r.spec.group == (g.task, g.backend,
                                                                                       g.team_size, g.cells,
                                                                                       g.pacing)]
            x = sizes.index(g.team_size) + offsets[g.backend]
            hit = [r.time_to_success_s / scale for r in runs if r.time_to_success_s is not None]
            miss = [g.cap_s / scale for r in runs if r.time_to_success_s is None]
            ax_time.scatter([x] * len(hit), hit, color=colours[g.team_size], edgecolor='black', zorder=3)
            ax_time.scatter([x] * len(miss), miss, marker='^', color='white', edgecolor=colours[g.team_size],
                            zorder=3)
            if g.time_to_success_median_s is not None:
                median = g.time_to_success_median_s / scale
                ax_time.plot([x - 0.06, x + 0.06], [median, median], color='black', lw=2)
            for values, ax, marker in ((g.mru, ax_util, 'o'), (g.mtu, ax_util, 's')):
                if values.n:
                    ax.errorbar(x + (0.04 if marker == 's' else -0.04), values.mean,
                                yerr=[[values.mean - values.low], [values.high - values.mean]], fmt=marker,
                                color=colours[g.team_size], mec='black', capsize=3)
        for ax in (ax_time, ax_util):
            ax.set_xticks(range(len(sizes)), [f'team {n}' for n in sizes])
            ax.set_xlim(-0.5, max(1, len(sizes)) - 0.5)
            ax.grid(alpha=0.3)
        ax_time.set_ylabel(f'time to success ({unit})')
        ax_time.set_ylim(bottom=0)
        ax_time.set_title('time to success per run (bar: median; triangle: not reached by the cap)',
                          fontsize=9)
        ax_util.set_title('MRU (circles) and MTU (squares): mean, min..max', fontsize=9)
        ax_util.axhline(1.0, color='0.5', ls=':', lw=1)     # MTU 1: linear token scaling
        ax_util.set_ylim(bottom=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)
    return path


def group_rows(results: BenchResults) -> list[list[str]]:
    rows = [['task', 'backend', 'team', 'cells', 'pacing', 'runs (failed)', 'reached bar [95% Wilson]',
             'time to success, median (censored at cap)', 'time to success, mean [95% t] over reached',
             'min..max', 'tokens to success (mean)', 'MRU mean [min, max]', 'MTU mean [min, max]',
             'trials (mean)', 'replayed']]
    for g in results.groups:
        t = g.time_to_success
        rows.append([
            g.task, g.backend, str(g.team_size), str(g.cells), g.pacing, f'{g.runs} ({g.failed_runs})',
            g.reached.fmt(),
            f'{g.time_to_success_median_s:.1f} s' if g.time_to_success_median_s is not None
            else 'not reached (median run)',
            f'{t.mean:.1f} s' + (f' [{t.ci_low:.1f}, {t.ci_high:.1f}]' if t.ci_low is not None else '')
            if t.n else '-',
            f'{t.low:.1f}..{t.high:.1f} s' if t.n else '-',
            f'{g.tokens_to_success.mean:.0f}' if g.tokens_to_success.n else '-',
            g.mru.fmt(3), g.mtu.fmt(2), f'{g.trials.mean:.1f}' if g.trials.n else '-',
            'yes' if g.replayed else 'no'])
    return rows


def run_rows(results: BenchResults) -> list[list[str]]:
    rows = [['run', 'status', 'replayed', 'length (time axis)', 'wall (thinking)', 'time to success',
             'tokens to success', 'tokens', 'trials',
             'ideas', 'MRU', 'MTU', 'stop reason', 'report']]
    for r in results.runs:
        rows.append([
            r.spec.run_id, r.status + (f': {r.error}' if r.error else ''),
            'yes' + (f' ({r.replay.prompt_mismatches} prompt mismatches)' if r.replay else '') if r.replayed
            else 'no',
            f'{r.wall_s:.0f} s', f'{r.run_wall_s:.0f} s ({r.thinking_wall_s:.1f} s)',
            f'{r.time_to_success_s:.1f} s' if r.time_to_success_s is not None else '-',
            str(r.tokens_to_success) if r.tokens_to_success is not None else '-', str(r.tokens),
            str(r.trials), str(r.ideas), f'{r.mru:.3f}' if r.mru is not None else '-',
            f'{r.mtu:.2f}' if r.mtu is not None else '-',
            r.stop_reason, r.report_html])
    return rows


def html_page(results: BenchResults, png: bytes) -> str:
    """One page with everything inline: the plot as a data URI, the tables, the notes, the matrix."""
    replayed = any(r.replayed for r in results.runs)
    banner = ('<p class="replayed">REPLAYED: LLM replies in this comparison were served from recorded '
              'transcripts; such runs are marked in the tables.</p>' if replayed else '')
    notes = ''.join(f'<li>{html.escape(n)}</li>' for n in results.notes)
    closing = ''.join(f'<li>{html.escape(n)}</li>' for n in results.closing_note)
    done = sum(1 for r in results.runs if r.status == 'done')
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(results.name)}: research progress</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1500px}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}th{{background:#eee}}
.replayed{{background:#fff3cd;border:1px solid #e0b000;padding:.5em 1em}}
pre{{background:#f6f6f6;padding:1em;font-size:12px;overflow-x:auto}}</style></head><body>
<h1>{html.escape(results.name)}: research progress across backends and team sizes</h1>
{banner}<p>{done} of {results.runs_planned} runs finished. Matrix {html.escape(results.matrix_path)}; base
experiment {html.escape(results.experiment_path)}.</p>
<ul>{notes}</ul>
<img alt="research-progress curves, time to success, MRU and MTU per team size" style="max-width:100%"
 src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Closing note</h2><ul>{closing}</ul>
<h2>Per configuration (over repeats)</h2>{html_table(group_rows(results))}
<h2>Per run</h2>{html_table(run_rows(results))}
<h2>Matrix</h2><pre>{html.escape(results.matrix.model_dump_json(indent=1))}</pre>
</body></html>
"""


def write(results: BenchResults, out_dir: str | Path) -> BenchResults:
    """results.json, <name>.png and <name>.html in `out_dir` (the JSON replaced atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / 'results.json'
    tmp = json_path.with_suffix('.json.tmp')
    tmp.write_text(results.model_dump_json(indent=1))
    tmp.replace(json_path)
    png = plot(results, out / f'{results.name}.png')
    (out / f'{results.name}.html').write_text(html_page(results, png.read_bytes()))
    return results


def paths(results: BenchResults, out_dir: str | Path) -> BenchPaths:
    out = Path(out_dir)
    return BenchPaths(json_path=str(out / 'results.json'), png=str(out / f'{results.name}.png'),
                      html=str(out / f'{results.name}.html'))
