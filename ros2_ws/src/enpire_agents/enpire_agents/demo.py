"""`make demo`: simulated cell(s) of the experiment's task, EN and rollout nodes, and an offline agent
team, end to end.

    python -m enpire_agents.demo [--task T | --config demo.yaml] [--out runs/demo] [--team-size N]
        [--wall-clock S]

The cells are the bringup file's (`sim_cells` of enpire_bringup, the one description of a cell), started
under the supervisor (`enpire_common.cells`) on a fresh ROS_DOMAIN_ID with loopback discovery: per cell
namespace sim_cell, safety, verify, reset and trial_server. The demo waits until every node is ready,
runs the team through the ROS graph with progress shown (a bag per trial under `<out>/bags/<cell>/`
when the experiment records), then prints the pass@1 / pass@k table with Wilson intervals and seeds and
the paths of the report. Every node process is stopped on exit, on Ctrl-C and on SIGTERM.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from enpire_common.cells import isolated_graph_env, simulated_cells

from enpire_agents.experiment import config_dir, load_experiment

READY_TIMEOUT_S = 150.0


def cell_parameters(config) -> dict[str, dict]:
    """What the experiment sets on the bringup file's cell nodes: its pacing, and the task's own node
    parameters where it has some (`Task.extras['cell_parameters']`: e.g. a cell's own cameras)."""
    from enpire_common import task_registry
    task = task_registry.get(config.task)
    own = task.load('cell_parameters')() if 'cell_parameters' in task.extras else {}
    pacing = {'sim': {'pacing': config.pacing}, 'safety': {'pacing': config.pacing}}
    return {node: {**own.get(node, {}), **pacing.get(node, {})} for node in {*own, *pacing}}


def demo_config(task: str) -> Path:
    """The demo experiment of `task`: config/demo_<task>.yaml, else config/demo.yaml when it runs that task
    (no task: config/demo.yaml)."""
    default = config_dir() / 'demo.yaml'
    if not task:
        return default
    own = config_dir() / f'demo_{task}.yaml'
    if own.exists() or load_experiment(default).task != task:
        return own                 # a task with no demo: load_experiment names the missing file
    return default


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description='ENPIRE-ROS demo: an offline agent team on simulated cells')
    ap.add_argument('--config', help="the experiment (default: the task's demo, config/demo_<task>.yaml, "
                                     "or config/demo.yaml when it names that task)")
    ap.add_argument('--task', default='',
                    help="an installed task whose demo runs (default: config/demo.yaml's)")
    ap.add_argument('--out', default=f'runs/demo_{time.strftime("%Y%m%d_%H%M%S")}')
    ap.add_argument('--team-size', type=int)
    ap.add_argument('--wall-clock', type=float, help='team wall-clock budget, seconds')
    ap.add_argument('--local', action='store_true', help='no ROS graph: the in-process simulator (dev aid)')
    args = ap.parse_args(argv)
    args.config = args.config or str(demo_config(args.task))
    overrides = {}
    if args.team_size:
        overrides['team.size'] = args.team_size
    if args.wall_clock:
        overrides['budgets.wall_clock_s'] = args.wall_clock
    config = load_experiment(args.config, **overrides)
    out = Path(args.out).resolve()
    t0 = time.monotonic()

    def say(line: str) -> None:
        print(f'[{time.monotonic() - t0:6.1f}s] {line}', flush=True)

    if args.local:
        from enpire_agents import guard, report
        from enpire_agents.team import LocalTrialRunner, Team
        protected = guard.ProtectedFiles(guard.default_protected_paths(args.config))
        result = Team(config, LocalTrialRunner(perception='noisy_gt', task=config.task), out, progress=say,
                      protected=protected).run()
        paths = report.write(result, out)
        return _finish(result, paths, t0)

    env = isolated_graph_env()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # SystemExit runs the finally: cells stopped
    try:
        say(f'starting simulated cell(s) {config.cells} on ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}')
        with simulated_cells(config.cells, out / 'node_logs', bag_dir=lambda cell: out / 'bags' / cell,
                             parameters=cell_parameters(config), task=config.task,
                             ready_timeout_s=READY_TIMEOUT_S, say=say) as cells:
            return _run_graph(config, args.config, out, cells, say, t0)
    except KeyboardInterrupt:
        say('interrupted: stopping the nodes')
        return 130


def _run_graph(config, config_path, out, cells, say, t0) -> int:
    import rclpy
    from enpire_common.executors import SubmitOnceExecutor

    from enpire_agents.agent_node import run_on_graph, wait_for_cells

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('enpire_demo_agent', context=context)
    executor = SubmitOnceExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        say('waiting for the cells\' nodes')
        missing = config.cells if not cells.wait_ready(READY_TIMEOUT_S) else wait_for_cells(
            node, config.cells, timeout_s=90.0)
        if missing:
            say(f'the graph did not come up: missing {missing}; {cells.problems()}')
            return 2
        say('graph up; the team starts')
        result, paths = run_on_graph(node, config, out, config_path=config_path, progress=say)
        return _finish(result, paths, t0, bags=out / 'bags' if config.record else None)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def ground_truth_lines(result) -> list[str]:
    """Beside each evaluation's pass@k from verdicts, the same rollouts' pass@k by the simulator's truth
    (privileged, replayed from their bags; never shown to an agent)."""
    from enpire_agents.ground_truth import ground_truth
    lines = []
    for label, e in (('held-out', result.evaluation), ('out of distribution', result.ood_evaluation)):
        if e is None or not any(e.bag_paths):
            continue
        truth = ground_truth(e.bag_paths, e.pass_at_1.seeds, e.k)
        if truth is not None:
            lines.append(f'ground truth, {label} ({e.node_id[:7]}; privileged simulator, from the bags): '
                         + truth.fmt())
    return lines


def _finish(result, paths, t0, bags: Path | None = None) -> int:
    from enpire_agents import report
    print()
    print(report.text_table(report.success_table(result)))
    for line in ground_truth_lines(result):
        print(line)
    print()
    print(f'reached bar: {result.reached_bar} ({result.stop_reason}); ideas {len(result.nodes)}, '
          f'improvement trials {result.trials}, tokens {result.tokens}, '
          f'MRU {result.utilization.mru:.3f}' if result.utilization else '')
    if result.integrity is not None and not result.integrity.valid:
        print(f'RUN INVALID: protected files changed during the run: {result.integrity.changed}')
    if result.time_to_bar_s is not None:
        print(f'time to success {result.time_to_bar_s:.1f} s, tokens to success {result.tokens_to_bar}')
    print(f'plot:    {paths.png}\nreport:  {paths.html}\nsummary: {paths.summary}\ntree:    git --git-dir '
          f'{result.tree_path} log --graph --all --oneline')
    if bags is not None:
        print(f'bags:    {bags}/<cell>/<trial>  (enpire audit {bags}/<cell>)')
    print(f'demo took {time.monotonic() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
