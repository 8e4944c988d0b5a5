"""`make demo`: simulated Push-T cell(s), EN and rollout nodes, and an offline agent team, end to end.

    python -m enpire_agents.demo [--config demo.yaml] [--out runs/demo] [--team-size N] [--wall-clock S]

Per cell namespace it starts sim_cell, safety, verify, reset and trial_server as subprocesses (each in
its own process group, loopback discovery, a fresh ROS_DOMAIN_ID), waits for the cells' run_trial
servers, runs the team through the ROS graph with progress shown (a bag per trial under
`<out>/bags/<cell>/` when the experiment records), then prints the pass@1 / pass@k table with Wilson
intervals and seeds and the paths of the report. Every subprocess is killed on exit, on
Ctrl-C and on SIGTERM.
"""
from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from enpire_agents.experiment import config_dir, load_experiment

TRIAL_SERVER_MODULES = ('enpire_rollout.trial_server', 'enpire_rollout.trial_server_node')


def cell_commands(cell: str, bag_dir: str | Path = '/tmp/enpire_bags', pacing: str = 'as_fast',
                  record_camera_period_s: float = 0.2) -> list[tuple[str, list[str]]]:
    """The node processes of one simulated cell (the start commands from the nodes' modules).

    The trial server verifies every 10 steps, so a solved attempt ends early instead of running out
    its 300 steps (what a robot cell does too: stop once the verifier says the task is done). Recorded
    trials keep every camera at 5 Hz (every second frame): raw frames at 10 Hz filled 19 MB a trial.
    """
    ros = ['--ros-args', '-r', f'__ns:=/{cell}']
    trial_server = next((m for m in TRIAL_SERVER_MODULES if importlib.util.find_spec(m)),
                        TRIAL_SERVER_MODULES[0])
    return [
        (f'{cell}.sim_cell', ['-m', 'enpire_sim.sim_cell_node', *ros, '-p', f'pacing:={pacing}']),
        (f'{cell}.safety', ['-m', 'enpire_env.safety_node', *ros, '-p', f'pacing:={pacing}',
                            '-p', 'autostart:=true']),
        (f'{cell}.verify', ['-m', 'enpire_env.verify_node', *ros]),
        (f'{cell}.reset', ['-m', 'enpire_env.reset_node', *ros]),
        (f'{cell}.trial_server', ['-m', trial_server, *ros, '-p', 'verify_every_n_steps:=10',
                                  '-p', f'bag_dir:={bag_dir}', '-p', 'save_evidence:=false',
                                  '-p', f'record_camera_period_s:={record_camera_period_s}']),
    ]


def demo_commands(config, out: Path) -> list[tuple[str, list[str]]]:
    """Every cell's node processes, each cell's trial bags in its own folder `<out>/bags/<cell>/`."""
    return [command for cell in config.cells
            for command in cell_commands(cell, out / 'bags' / cell, config.pacing)]


class Processes:
    """Subprocesses in their own process groups; `stop()` ends them all (SIGINT, then SIGKILL)."""

    def __init__(self, log_dir: Path, env: dict):
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._stopped = False

    def start(self, name: str, argv: list[str]) -> None:
        log = open(self.log_dir / f'{name}.log', 'w')
        proc = subprocess.Popen([sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        self.procs.append((name, proc))

    def dead(self) -> list[str]:
        return [f'{name} (exit {p.returncode}, log {self.log_dir / (name + ".log")})'
                for name, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for _, proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the whole group: sandboxes and recorders started by a node go too
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def graph_env() -> dict:
    """This process's environment with loopback discovery and a fresh domain, applied before rclpy loads."""
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.pop('ROS_LOCALHOST_ONLY', None)
    current = os.environ.get('ROS_DOMAIN_ID', '0')
    domain = random.SystemRandom().choice([d for d in range(110, 160) if str(d) != current])
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    return {**os.environ, 'PYTHONUNBUFFERED': '1'}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description='ENPIRE-ROS demo: an offline agent team on simulated cells')
    ap.add_argument('--config', default=str(config_dir() / 'demo.yaml'))
    ap.add_argument('--out', default=f'runs/demo_{time.strftime("%Y%m%d_%H%M%S")}')
    ap.add_argument('--team-size', type=int)
    ap.add_argument('--wall-clock', type=float, help='team wall-clock budget, seconds')
    ap.add_argument('--local', action='store_true', help='no ROS graph: the in-process simulator (dev aid)')
    args = ap.parse_args(argv)
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
        result = Team(config, LocalTrialRunner(perception='noisy_gt'), out, progress=say,
                      protected=protected).run()
        paths = report.write(result, out)
        return _finish(result, paths, t0)

    env = graph_env()
    procs = Processes(out / 'node_logs', env)
    atexit.register(procs.stop)
    signal.signal(signal.SIGTERM, lambda *_: (procs.stop(), sys.exit(143)))
    try:
        say(f'starting simulated cell(s) {config.cells} on ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}')
        for name, cmd in demo_commands(config, out):
            procs.start(name, cmd)
        return _run_graph(config, args.config, out, procs, say, t0)
    except KeyboardInterrupt:
        say('interrupted: stopping the nodes')
        return 130
    finally:
        procs.stop()


def _run_graph(config, config_path, out, procs, say, t0) -> int:
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
        say('waiting for the cells\' run_trial servers')
        missing = wait_for_cells(node, config.cells, timeout_s=90.0)
        if missing or procs.dead():
            say(f'the graph did not come up: missing {missing}; exited: {procs.dead()}')
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
