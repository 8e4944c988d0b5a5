"""Research-progress benchmark: from the empty policy, an offline team to the success bar on Push-T.

    python bench/pusht_research.py [--config pusht_research.yaml] [--local] [--out runs/bench_research]

Through the ROS graph by default (simulated cells at as-fast pacing, as `make demo`); `--local` runs the
same team on the in-process simulator. Progress goes to stderr; stdout gets ONE JSON line with
`reached_bar`, `minutes_to_bar`, `pass_at_1`, `pass_at_8`, `n_eval`, `pass_at_8_ood` (the best policy on
out-of-distribution starts), the curve's figures and, beside the pass@k from verdicts, the ground truth of
the same held-out rollouts replayed from their bags (`pass_at_1_true`, `pass_at_8_true`, `..._ood`,
`false_successes_eval`: privileged, never shown to agents; None with --local, which records no bag).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from enpire_agents import guard, report
from enpire_agents.experiment import config_dir, load_experiment


def _figures(result, t0: float) -> dict:
    ev, ood = result.evaluation, result.ood_evaluation
    return {
        'reached_bar': result.reached_bar,
        'minutes_to_bar': round(result.time_to_bar_s / 60, 2) if result.time_to_bar_s is not None else None,
        'pass_at_1': ev.pass_at_1.rate if ev else None,
        'pass_at_1_wilson': [ev.pass_at_1.low, ev.pass_at_1.high] if ev else None,
        'pass_at_8': ev.pass_at_k.rate if ev else None,
        'pass_at_8_wilson': [ev.pass_at_k.low, ev.pass_at_k.high] if ev else None,
        'n_eval': ev.pass_at_k.n if ev else 0,
        'eval_seeds': [min(ev.pass_at_k.seeds), max(ev.pass_at_k.seeds)] if ev else None,
        'pass_at_8_ood': ood.pass_at_k.rate if ood else None,
        'pass_at_1_ood': ood.pass_at_1.rate if ood else None,
        'n_ood': ood.pass_at_k.n if ood else 0,
        'tokens_to_bar': result.tokens_to_bar, 'tokens': result.tokens, 'trials': result.trials,
        'ideas': len(result.nodes), 'team_size': result.team_size,
        'mru': result.utilization.mru if result.utilization else None,
        'curve': [[round(p.t_s, 1), round(p.team_success, 3)] for p in result.progress],
        'stop_reason': result.stop_reason, 'wall_minutes': round((time.monotonic() - t0) / 60, 2),
        'not_run_eval': ev.not_run if ev else 0,
        'run_valid': result.integrity.valid if result.integrity else None,
        'protected_changed': result.integrity.changed if result.integrity else [],
    }


def _ground_truth(result, say) -> dict:
    """Beside pass@k from verdicts, the same held-out rollouts' pass@k by the simulator's truth (privileged,
    replayed from their bags; never shown to an agent). None where no bag was recorded (--local)."""
    from enpire_agents.ground_truth import ground_truth
    out = {}
    for key, e in (('', result.evaluation), ('_ood', result.ood_evaluation)):
        recorded = e is not None and any(e.bag_paths)
        truth = ground_truth(e.bag_paths, e.pass_at_1.seeds, e.k) if recorded else None
        if truth is not None:
            say(f'ground truth{key or " held-out"}: {truth.fmt()}')
        out[f'pass_at_1_true{key}'] = truth.pass_at_1.rate if truth else None
        out[f'pass_at_8_true{key}'] = truth.pass_at_k.rate if truth else None
        out[f'false_successes{key}_eval'] = truth.false_successes if truth else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', default=str(config_dir() / 'pusht_research.yaml'))
    ap.add_argument('--out', default=f'runs/bench_research_{time.strftime("%Y%m%d_%H%M%S")}')
    ap.add_argument('--local', action='store_true')
    args = ap.parse_args()
    config = load_experiment(args.config)
    out = Path(args.out).resolve()
    t0 = time.monotonic()

    def say(line: str) -> None:
        print(f'[{time.monotonic() - t0:7.1f}s] {line}', file=sys.stderr, flush=True)

    if args.local:
        from enpire_agents.team import LocalTrialRunner, Team
        protected = guard.ProtectedFiles(guard.default_protected_paths(args.config))
        runner = LocalTrialRunner(perception='noisy_gt', task=config.task)
        result = Team(config, runner, out, progress=say, protected=protected,
                      evaluate_ood=True).run()
        paths = report.write(result, out)
    else:
        result, paths = _on_graph(config, args.config, out, say)
        if result is None:
            print(json.dumps({'reached_bar': False, 'error': paths}))
            return 2
    say(f'report {paths.png} {paths.html}')
    figures = _figures(result, t0)
    figures.update(_ground_truth(result, say))
    print(json.dumps(figures))
    return 0


def _on_graph(config, config_path, out, say):
    from enpire_common.cells import isolated_graph_env, simulated_cells

    from enpire_agents.demo import cell_parameters
    isolated_graph_env()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # SystemExit runs the finally: nodes stopped
    with simulated_cells(config.cells, out / 'node_logs', bag_dir=lambda cell: out / 'bags',
                         parameters=cell_parameters(config), task=config.task, ready_timeout_s=150.0,
                         say=say) as cells:
        if not cells.wait_ready(150.0):
            return None, f'the cells did not come up: {cells.problems()}'
        import rclpy
        from enpire_common.executors import SubmitOnceExecutor

        from enpire_agents.agent_node import run_on_graph, wait_for_cells
        context = rclpy.Context()
        rclpy.init(context=context)
        node = rclpy.create_node('enpire_bench_agent', context=context)
        executor = SubmitOnceExecutor(context=context)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        try:
            missing = wait_for_cells(node, config.cells, timeout_s=90.0)
            if missing:
                return None, f'cells without run_trial: {missing}; {cells.problems()}'
            return run_on_graph(node, config, out, config_path=config_path, progress=say, evaluate_ood=True)
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=context)


if __name__ == '__main__':
    raise SystemExit(main())
