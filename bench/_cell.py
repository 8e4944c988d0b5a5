"""What the benches that drive a simulated cell through its trial server share: the cell itself (the
bringup file's, under the supervisor), a client node, and the harness MRU measurement."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Imported before anything loads rclpy: discovery on loopback, a domain of this bench's own.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.pop('ROS_LOCALHOST_ONLY', None)
os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 80))

# The benches measure every frame and the whole attempt: no verification before the attempt's end and every
# camera frame recorded (the bringup file's run settings thin both out), no evidence images.
BENCH_TRIAL_SERVER = {'verify_every_n_steps': 0, 'save_evidence': False}
BENCH_RECORDER = {'record_camera_period_s': 0.0}


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of `root` and every process below it, from /proc, with the children each
    of them has already reaped (a sandbox that ended within the span still counts)."""
    parents, cpu = {}, {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        cpu[pid] = sum(int(f) for f in fields[11:15]) / os.sysconf('SC_CLK_TCK')
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def oscillating_policy(touch_frame: bool = False) -> str:
    """A policy that moves between two targets every 20 steps and answers at once; with `touch_frame` it
    also reads the top camera's frame each step, as real policies do."""
    touch = "200.0 + 0.0 * float(np.mean(observation.frames['top'][::8, ::8]))"
    header, y = ('import numpy as np\n\n', touch) if touch_frame else ('', '200.0')
    return (f'{header}class Policy:\n    def reset(self, context):\n        self.t = 0\n\n'
            f'    def act(self, observation):\n        self.t += 1\n'
            f'        return (200.0 + 100.0 * ((self.t // 20) % 2), {y})\n\n'
            f'    def on_attempt_failed(self, report):\n        pass\n')


@contextmanager
def bench_cell(name: str, pacing: str, tmp: Path, recorder: dict | None = None) -> Iterator:
    """One simulated cell `name` from the bringup file, ready, and a spun client node; stopped on exit.
    `recorder`: the recorder's parameters (default: every camera frame recorded)."""
    from enpire_common.cells import simulated_cells

    from tests.graph_harness import RosTestNode

    with simulated_cells([name], tmp / 'logs', bag_dir=lambda cell: tmp / 'bags',
                         parameters={'sim': {'pacing': pacing}, 'safety': {'pacing': pacing},
                                     'trial_server': BENCH_TRIAL_SERVER,
                                     'recorder': BENCH_RECORDER if recorder is None else recorder}) as cells:
        if not cells.wait_ready(150.0):
            raise RuntimeError(f'the bench cell did not come up: {cells.problems()}')
        ros = RosTestNode(f'{name}_client')
        try:
            yield cells, ros
        finally:
            ros.close()


def sim_time_wall_overhead(arrivals: list[tuple[float, int]], control_hz: float) -> list[float]:
    """Per trial: how much slower than real time a real-time cell stepped, from (wall time at receipt, step)
    of its states: the wall time from a trial's first step to its last over the steps' cell time
    ((last - first) / control_hz), minus 1. A trial is a run of rising steps (a reset starts at 0)."""
    runs, first_seen = [], {}
    for wall, step in arrivals:
        if runs and step < runs[-1][-1][1]:
            first_seen = {}
        if step <= 0 or step in first_seen:
            continue
        first_seen[step] = wall
        if len(first_seen) == 1:
            runs.append([])
        runs[-1].append((wall, step))
    return [(run[-1][0] - run[0][0]) / ((run[-1][1] - run[0][1]) / control_hz) - 1.0
            for run in runs if len(run) >= 10]


def harness_mru(policy: Path, tmp: Path, trials: int, steps: int, task: str, name: str = 'bench_rt') -> dict:
    """Back-to-back trials on a 10 Hz real-time cell; MRU = time executing policy steps / the cell's wall
    time, with the cell's seconds by phase, the trial server's sandbox line, and per trial the sim-time
    wall overhead (wall clock of this client vs the cell's steps)."""
    from enpire_common import names

    from enpire_interfaces.msg import CellState
    from enpire_rollout.fleet_client import FleetClient, TrialRequest

    with bench_cell(name, 'real_time', tmp) as (cells, ros):
        fleet = FleetClient(ros.node, [name])
        arrivals: list[tuple[float, int]] = []
        ros.node.create_subscription(CellState, names.cell_name(name, names.CELL_STATE),
                                     lambda msg: arrivals.append((time.monotonic(), msg.step)), 100)
        t0 = time.monotonic()
        outs = fleet.run_trials([TrialRequest(task=task, policy_path=str(policy), seed=s, attempts=1,
                                              steps_per_attempt=steps) for s in range(trials)])
        report = fleet.report()
        overheads = sim_time_wall_overhead(list(arrivals), control_hz=10.0)
        logs = cells.supervisor.log_dir   # a composed cell logs as one process, a separate node alone
        log = next(p for p in (logs / f'{name}.log', logs / f'{name}.trial_server.log') if p.exists())
        log = log.read_text().splitlines()
        sandbox_lines = [line for line in log if 'policy sandbox' in line]
        return {'mru': round(report['mru'], 4), 'mru_cell_seconds': report['cells'][name],
                'mru_trials': len(outs), 'mru_steps': steps, 'mru_wall_s': round(time.monotonic() - t0, 2),
                'mru_failures': [o.failure_reason for o in outs if o.failure_reason],
                'sim_time_wall_overhead': [round(o, 4) for o in overheads],
                'trial_server_sandbox': sandbox_lines[-1].split(']: ')[-1] if sandbox_lines else ''}
