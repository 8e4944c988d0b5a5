"""One experiment's report: PNG (tree above the research-progress curve), self-contained HTML, JSON summary.

The upper panel is the hypothesis tree on the wall-clock axis: one lane per agent, one marker per idea
(from its start to its end, coloured by its pass@k on the improvement seeds; rejected ideas are
crosses, pruned ones hollow), reuse drawn as arrows between lanes. The lower panel, on the same axis,
is the team-average success (the mean of each agent's best pass@k so far), with the held-out
confirmations marked. Matplotlib runs with the Agg backend; nothing here needs a display or rclpy.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from enpire_agents.metrics import Rate  # noqa: E402
from enpire_agents.team import Evaluation, TeamResult  # noqa: E402


class ReportPaths(BaseModel):
    png: str
    html: str
    summary: str


def _rate_json(rate: Rate | None) -> dict | None:
    if rate is None:
        return None
    return {'rate': rate.rate, 'low': rate.low, 'high': rate.high, 'successes': rate.successes, 'n': rate.n,
            'confidence': rate.confidence, 'seeds': rate.seeds}


def _evaluation_json(evaluation: Evaluation | None) -> dict | None:
    if evaluation is None:
        return None
    return {'node_id': evaluation.node_id, 'distribution': evaluation.distribution, 'k': evaluation.k,
            'pass_at_1': _rate_json(evaluation.pass_at_1),
            f'pass_at_{evaluation.k}': _rate_json(evaluation.pass_at_k),
            'mean_score': evaluation.mean_score, 'meets_bar': evaluation.meets_bar, 't_s': evaluation.t_s}


def summary(result: TeamResult, mtu: float | None = None) -> dict:
    """The JSON summary: success with Wilson intervals and seeds, MRU, MTU, tokens and time to success."""
    util = result.utilization
    return {
        'experiment': result.experiment, 'team_size': result.team_size, 'backends': result.backends,
        'cells': result.cells, 'reached_bar': result.reached_bar, 'stop_reason': result.stop_reason,
        'wall_s': round(result.wall_s, 2), 'time_to_success_s': result.time_to_bar_s,
        'tokens_to_success': result.tokens_to_bar, 'tokens': result.tokens,
        'tokens_per_agent': result.tokens_per_agent, 'improvement_trials': result.trials,
        'robot_time_s': round(result.robot_time_s, 2),
        'mru': util.mru if util else None,
        'reset_share': util.reset_share if util else None, 'idle_share': util.idle_share if util else None,
        'mtu': mtu, 'best_node': result.best_node, 'best_agent': result.best_agent,
        'evaluation': _evaluation_json(result.evaluation),
        'ood_evaluation': _evaluation_json(result.ood_evaluation),
        'confirmations': [_evaluation_json(e) for e in result.confirmations],
        'ideas': len(result.nodes), 'pruned': sum(1 for n in result.nodes if n.pruned),
        'reused': sum(1 for n in result.nodes if n.reused_from),
        'integrity_valid': result.integrity.valid if result.integrity else None,
        'hypothesis_tree': result.tree_path,
    }


def plot(result: TeamResult, path: str | Path) -> Path:
    path = Path(path)
    agents = sorted({n.agent for n in result.nodes} | {f'agent_{i}' for i in range(result.team_size)},
                    key=lambda a: (len(a), a))
    lane = {a: i for i, a in enumerate(agents)}
    t_end = max([result.wall_s] + [n.t_end for n in result.nodes]) or 1.0
    scale, unit = (60.0, 'min') if t_end > 180 else (1.0, 's')
    height = 2.2 + 0.55 * len(agents)
    ratios = [max(1.2, 0.55 * len(agents)), 2.2]
    fig, (ax_tree, ax_curve) = plt.subplots(2, 1, figsize=(12, height + 3.2), sharex=True,
                                            gridspec_kw={'height_ratios': ratios})
    cmap, norm = plt.get_cmap('RdYlGn'), Normalize(0.0, 1.0)
    by_id = {n.node_id: n for n in result.nodes}
    for i in lane.values():
        ax_tree.axhline(i, color='0.88', lw=6, zorder=0, solid_capstyle='butt')
    for node in result.nodes:
        y = lane[node.agent]
        x0, x1 = node.t_start / scale, node.t_end / scale
        span_colour = cmap(norm(node.pass_at_k)) if node.status == 'evaluated' else (0.4, 0.4, 0.4, 1.0)
        ax_tree.plot([x0, x1], [y, y], color=span_colour, lw=4, alpha=0.35, zorder=1, solid_capstyle='butt')
        if node.status != 'evaluated':
            ax_tree.scatter(x1, y, marker='x', s=45, color='0.3', zorder=3)
            continue
        if len(result.nodes) <= 12 * len(agents):
            ax_tree.annotate(f'#{node.round}', (x1, y), xytext=(0, 8), textcoords='offset points',
                             ha='center', fontsize=7, color='0.35')
        colour = cmap(norm(node.pass_at_k))
        ax_tree.scatter(x1, y, s=90, zorder=3, marker='o', facecolor='white' if node.pruned else colour,
                        edgecolor=colour if node.pruned else 'black', linewidths=1.6 if node.pruned else 0.6)
    for node in result.nodes:
        source = by_id.get(node.reused_from) if node.reused_from else None
        if source is None:
            continue
        ax_tree.annotate('', xy=(node.t_end / scale, lane[node.agent]),
                         xytext=(source.t_end / scale, lane[source.agent]),
                         arrowprops={'arrowstyle': '->', 'color': 'tab:blue', 'lw': 1.3,
                                     'connectionstyle': 'arc3,rad=0.15', 'alpha': 0.8}, zorder=2)
    if result.best_node and result.best_node in by_id:
        best = by_id[result.best_node]
        ax_tree.scatter(best.t_end / scale, lane[best.agent] + 0.3, s=170, marker='^', color='gold',
                        edgecolor='black', zorder=4)
    ax_tree.set_yticks(range(len(agents)), agents)
    ax_tree.set_ylim(len(agents) - 0.4, -0.6)
    ax_tree.set_title(f'{result.experiment}: hypothesis tree (lane per agent; colour = pass@k on improvement '
                      'seeds, bar = idea start to end; x = rejected; hollow = pruned; blue arrow = reuse; '
                      'gold = best)',
                      fontsize=9.5)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
    # An inset colour bar, so both panels keep the same width and share the time axis exactly.
    fig.colorbar(sm, cax=ax_tree.inset_axes([1.008, 0.0, 0.012, 1.0])).set_label('pass@k', fontsize=8)

    points = sorted(result.progress, key=lambda p: p.t_s)
    xs = [p.t_s / scale for p in points]
    ax_curve.step(xs, [p.team_success for p in points], where='post', color='tab:green', lw=2,
                  label='team-average success (mean of agents\' best pass@k)')
    ax_curve.step(xs, [p.team_score for p in points], where='post', color='tab:gray', lw=1.2, ls='--',
                  label='team-average best mean score (coverage)')
    shown = list(result.confirmations)
    if result.evaluation is not None and result.evaluation not in shown:
        shown.append(result.evaluation)
    for e in shown:
        ax_curve.plot([(e.t_s - e.wall_s) / scale, e.t_s / scale], [e.pass_at_k.rate] * 2, lw=5, alpha=0.25,
                      color='tab:purple' if e.meets_bar else 'tab:red', solid_capstyle='butt')
        ax_curve.errorbar(e.t_s / scale, e.pass_at_k.rate,
                          yerr=[[e.pass_at_k.rate - e.pass_at_k.low], [e.pass_at_k.high - e.pass_at_k.rate]],
                          fmt='D', color='tab:purple' if e.meets_bar else 'tab:red', capsize=4,
                          label=f'held-out pass@{e.k} ({"meets" if e.meets_bar else "below"} the bar)')
    if result.time_to_bar_s is not None:
        ax_curve.axvline(result.time_to_bar_s / scale, color='tab:purple', ls='--', lw=1)
    ax_curve.set_ylim(-0.03, 1.05)
    ax_curve.set_ylabel('success')
    ax_curve.set_xlabel(f'wall clock ({unit})')
    ax_curve.set_xlim(0, t_end / scale * 1.02)
    ax_curve.grid(alpha=0.3)
    handles, labels = ax_curve.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax_curve.legend(unique.values(), unique.keys(), loc='upper left', fontsize=8, framealpha=0.9)
    ax_curve.set_title('research progress', fontsize=9.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return path


def success_table(result: TeamResult) -> list[list[str]]:
    rows = [['policy', 'seeds', 'pass@1 [95% Wilson]', 'pass@k [95% Wilson]']]
    for label, e in (('held-out, in distribution', result.evaluation),
                     ('out of distribution', result.ood_evaluation)):
        if e is None:
            continue
        seeds = e.pass_at_1.seeds
        seed_text = f'{min(seeds)}..{max(seeds)} ({len(seeds)})' if seeds else '-'
        rows.append([f'{label} ({e.node_id[:7]})', seed_text, e.pass_at_1.fmt(),
                     f'k={e.k}: {e.pass_at_k.fmt()}'])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def html_table(rows: list[list[str]]) -> str:
    head = ''.join(f'<th>{html.escape(c)}</th>' for c in rows[0])
    body = ''.join('<tr>' + ''.join(f'<td>{html.escape(str(c))}</td>' for c in r) + '</tr>' for r in rows[1:])
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def write(result: TeamResult, out_dir: str | Path, mtu: float | None = None) -> ReportPaths:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot(result, out / f'{result.experiment}_report.png')
    data = summary(result, mtu)
    json_path = out / f'{result.experiment}_summary.json'
    json_path.write_text(json.dumps(data, indent=1))
    (out / f'{result.experiment}_result.json').write_text(result.model_dump_json(indent=1))
    node_rows = [['t end', 'agent', '#', 'decision', 'pass@1', 'pass@k', 'score', 'tokens', 'reused from',
                  'pruned', 'hypothesis']]
    for n in result.nodes:
        node_rows.append([f'{n.t_end:.1f}s', n.agent, str(n.round), n.decision, f'{n.pass_at_1:.2f}',
                          f'{n.pass_at_k:.2f}', f'{n.mean_score:.3f}', str(n.tokens),
                          f'{n.reused_from_agent} {n.reused_from[:7]}' if n.reused_from else '',
                          n.pruned or '', n.hypothesis[:120]])
    figures = [['figure', 'value'], ['reached bar', str(result.reached_bar)],
               ['stop reason', result.stop_reason],
               ['wall clock', f'{result.wall_s:.1f} s'],
               ['time to success',
                f'{result.time_to_bar_s:.1f} s' if result.time_to_bar_s is not None else '-'],
               ['tokens to success', str(result.tokens_to_bar) if result.tokens_to_bar is not None else '-'],
               ['tokens', str(result.tokens)], ['improvement trials', str(result.trials)],
               ['MRU', f'{data["mru"]:.3f}' if data['mru'] is not None else '-'],
               ['MTU', f'{mtu:.3f}' if mtu is not None else '- (needs a single-agent run)'],
               ['integrity',
                'valid' if data['integrity_valid'] is not False else 'INVALID: protected files changed']]
    image = base64.b64encode(png.read_bytes()).decode()
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(result.experiment)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}th{{background:#eee}}
pre{{background:#f6f6f6;padding:1em;font-size:12px;overflow-x:auto}}</style></head><body>
<h1>Experiment {html.escape(result.experiment)}</h1>
<p>Team of {result.team_size} ({html.escape(', '.join(sorted(set(result.backends))))}) on cells
{html.escape(', '.join(result.cells))}.</p>
<img alt="hypothesis tree above the research-progress curve" style="max-width:100%"
 src="data:image/png;base64,{image}">
<h2>Success (held-out seeds)</h2>{html_table(success_table(result))}
<h2>Figures</h2>{html_table(figures)}
<h2>Ideas</h2>{html_table(node_rows)}
<h2>git log --graph --all</h2><pre>{html.escape(result.tree_log)}</pre>
<h2>Summary (JSON)</h2><pre>{html.escape(json.dumps(data, indent=1))}</pre>
</body></html>
"""
    html_path = out / f'{result.experiment}_report.html'
    html_path.write_text(page)
    return ReportPaths(png=str(png), html=str(html_path), summary=str(json_path))
