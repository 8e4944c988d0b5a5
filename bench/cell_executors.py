"""Which executor runs a composed cell: CPU of one simulated cell (sim_cells.yaml, all its nodes in ONE
process, enpire_common.composition) per executor, idle and running a 10 Hz trial, and whether the trial
completes. Prints the figures per executor and ends with ONE JSON line.

- idle: a lockstep (as_fast) cell that nobody commands, over `--idle-s` seconds (its cell time stands still:
  what an idle cell of a sim-time fleet costs), and a real-time cell (10 Hz physics and cameras) likewise;
- active: a real-time cell (10 Hz, cell time = wall time) running one trial of `--steps` steps of a scripted
  policy with recording on, CPU over the trial from goal to result;
- CPU: user + system time from /proc of the cell process and everything below it (the policy's sandbox,
  reaped children included), divided by the wall time of the span: cores;
- awaiting: in this process, the executor's CPU while one task awaits a future that a thread completes
  after 3 s (what a trial rewritten as a coroutine would cost while it waits).

    . ./env.sh && python bench/cell_executors.py [--executors inline,submit_once,single,events] [--idle-s 20]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cell import BENCH_TRIAL_SERVER, oscillating_policy, tree_cpu_s  # noqa: E402  (loopback first)

EXECUTORS = ('inline', 'submit_once', 'single', 'events')


def composed_cell(name: str, executor: str, pacing: str, tmp: Path):
    """One composed cell of sim_cells.yaml on `executor`, started (RunningCells), and whether it came up."""
    from enpire_common.bringup_file import ComposeSpec
    from enpire_common.cells import RunningCells, cell_expansion

    expansion = cell_expansion([name], bag_dir=lambda cell: tmp / 'bags' / cell, parameters={
        'sim': {'pacing': pacing}, 'safety': {'pacing': pacing}, 'trial_server': BENCH_TRIAL_SERVER})
    expansion.bringup.cells.compose = ComposeSpec(executor=executor)
    running = RunningCells(expansion, tmp / 'logs' / f'{executor}_{pacing}', ready_timeout_s=150.0, say=None,
                           console=None).start()
    return running, running.wait_ready(150.0)


def cores_over(pid: int, seconds: float) -> float:
    cpu0, t0 = tree_cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (tree_cpu_s(pid) - cpu0) / (time.monotonic() - t0)


class TrialClient:
    """A run_trial client in this process: its action client exists before its executor spins (an
    ActionClient added to a spinning node can be polled half-built)."""

    def __init__(self, cell: str):
        import rclpy
        from enpire_common import names
        from enpire_common.action_client import ActionClient
        from rclpy.executors import SingleThreadedExecutor

        from enpire_interfaces.action import RunTrial

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f'{cell}_bench_client', context=self.context)
        self.client = ActionClient(self.node, RunTrial, names.cell_name(cell, names.RUN_TRIAL))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def wait_future(self, future, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f'no {what} within {timeout:.0f} s')
            time.sleep(0.02)
        return future.result()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def run_trial(ros: TrialClient, policy: Path, steps: int, pid: int) -> dict:
    """One recorded trial on the cell; CPU of the cell from goal to result; ok=False with the reason when
    it failed or gave no result in time."""
    from enpire_interfaces.action import RunTrial

    client = ros.client
    if not client.wait_for_server(timeout_sec=30):
        return {'ok': False, 'reason': 'run_trial not on the graph'}
    source = policy.read_bytes()
    goal = RunTrial.Goal(task='pusht', policy_path=str(policy),
                         policy_sha256=hashlib.sha256(source).hexdigest(), seed=3,
                         distribution='in_distribution', attempts=1, steps_per_attempt=steps,
                         time_budget_s=0.0, record=True)
    cpu0, t0 = tree_cpu_s(pid), time.monotonic()
    try:
        handle = ros.wait_future(client.send_goal_async(goal), 30, 'goal accepted')
    except TimeoutError as exc:
        return {'ok': False, 'reason': str(exc)}
    if not handle.accepted:
        return {'ok': False, 'reason': 'goal refused'}
    timeout = steps / 10.0 + 90.0
    try:
        result = ros.wait_future(handle.get_result_async(), timeout, 'trial result').result
    except TimeoutError:
        return {'ok': False, 'reason': f'no result within {timeout:.0f} s'}
    wall = time.monotonic() - t0
    cores = (tree_cpu_s(pid) - cpu0) / wall
    if result.failure_reason:
        return {'ok': False, 'reason': result.failure_reason, 'wall_s': round(wall, 1)}
    return {'ok': True, 'cores': round(cores, 4), 'wall_s': round(wall, 1),
            'execute_s': round(result.execute_s, 2)}


def awaiting_cpu_s(executor: str, wait_s: float = 3.0) -> float:
    """CPU seconds this process spends while a task of `executor` awaits a future completed by a thread."""
    import rclpy
    from enpire_common.composition import EXECUTORS as FACTORIES
    from rclpy.task import Future

    rclpy.init()
    try:
        node = rclpy.create_node('awaiting_probe')
        spinner = FACTORIES[executor]()
        spinner.add_node(node)
        done = threading.Event()

        async def waiting():
            future = Future(executor=spinner)
            threading.Timer(wait_s, lambda: future.set_result(True)).start()
            await future
            done.set()

        spinner.create_task(waiting)
        cpu0 = time.process_time()
        while not done.is_set() and time.process_time() - cpu0 < 5 * wait_s:
            spinner.spin_once(timeout_sec=0.5)
        cpu = time.process_time() - cpu0
        spinner.shutdown()
        node.destroy_node()
        return cpu
    finally:
        rclpy.shutdown()


def measure(executor: str, tmp: Path, idle_s: float, steps: int, policy: Path) -> dict:
    """The executor's figures; a cell that does not come up (or stop on SIGINT) is a finding, not a crash."""
    figures = {'awaiting_cpu_s': round(awaiting_cpu_s(executor), 3), 'idle_cores': None,
               'idle_real_time_cores': None, 'trial': {'ok': False, 'reason': 'not run'}, 'came_up': True,
               'stopped_on_sigint': True}
    for name, pacing in (('exec_fast', 'as_fast'), ('exec_rt', 'real_time')):
        running, ready = composed_cell(name, executor, pacing, tmp)
        if not ready:
            running.stop()
            figures['stopped_on_sigint'] = running.supervisor.status()[name]['status'] == 'exited'
            figures.update(came_up=False, trial={'ok': False, 'reason': f'the cell did not come up in 150 s '
                                                 f'({pacing}): {running.problems()}'[-300:]})
            return figures
        ros = TrialClient(name) if pacing == 'real_time' else None
        try:
            pid = running.supervisor.pids()[name]
            time.sleep(5.0)    # start-up settles (discovery, first frames)
            cores = round(cores_over(pid, idle_s), 4)
            if pacing == 'as_fast':
                figures['idle_cores'] = cores
            else:
                figures['idle_real_time_cores'] = cores
                figures['trial'] = run_trial(ros, policy, steps, pid)
        finally:
            if ros is not None:
                ros.close()
            running.stop()
        figures['stopped_on_sigint'] &= running.supervisor.status()[name]['status'] == 'exited'
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--executors', default=','.join(EXECUTORS))
    parser.add_argument('--idle-s', type=float, default=20.0)
    parser.add_argument('--steps', type=int, default=200, help='steps of the 10 Hz trial')
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix='enpire_bench_executors_'))
    policy = tmp / 'policy.py'
    policy.write_text(oscillating_policy(touch_frame=True))
    results = {}
    for executor in args.executors.split(','):
        results[executor] = figures = measure(executor, tmp, args.idle_s, args.steps, policy)
        trial = figures['trial']
        active = f"{trial['cores']:.3f} cores" if trial['ok'] else f"no trial: {trial['reason']}"
        idle = (f'idle {figures["idle_cores"]:.3f} cores (lockstep), {figures["idle_real_time_cores"]:.3f} '
                '(real time)' if figures['idle_real_time_cores'] is not None else 'the cell did not come up')
        print(f'{executor:12s} {idle}; 10 Hz trial: {active}; a task awaiting 3 s: '
              f'{figures["awaiting_cpu_s"]:.2f} CPU s; stopped on SIGINT: {figures["stopped_on_sigint"]}',
              flush=True)
    working = {e: f for e, f in results.items() if f['trial']['ok']}
    chosen = min(working, key=lambda e: working[e]['trial']['cores'] + working[e]['idle_cores']) if working \
        else None
    print(json.dumps({
        'idle_cores_per_cell': {e: f['idle_cores'] for e, f in results.items()},
        'idle_real_time_cores_per_cell': {e: f['idle_real_time_cores'] for e, f in results.items()},
        'active_cores_per_cell': {e: f['trial'].get('cores') if f['trial']['ok'] else None
                                  for e, f in results.items()},
        'trial_ok': {e: f['trial']['ok'] for e, f in results.items()},
        'trial_failure': {e: f['trial']['reason'] for e, f in results.items() if not f['trial']['ok']},
        'awaiting_cpu_s': {e: f['awaiting_cpu_s'] for e, f in results.items()},
        'stopped_on_sigint': {e: f['stopped_on_sigint'] for e, f in results.items()},
        'chosen': chosen, 'idle_s': args.idle_s, 'trial_steps': args.steps}))


if __name__ == '__main__':
    main()
