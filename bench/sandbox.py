"""Policy sandbox benchmark: the OS boundary's cost against the Python-guard-only sandbox, and harness MRU.
Prints ONE final JSON line.

- per-act overhead: two runners with the same policy and observations (3 cameras 96x96), one behind the OS
  boundary (bubblewrap, uid, seccomp), one in the explicitly weaker Python-guard mode (the previous
  sandbox); act() calls alternate between them (the order flips every call) and the overhead is the
  PAIRED wall-clock difference per call, median and p99 in ms.
- start-up per attempt: spawn + load + reset() for each mode, alternating; wall clock, and the sandbox's CPU
  time (getrusage of the reaped children: bwrap, the child and its interpreter).
- harness MRU: one real-time simulated cell (10 Hz), 3 back-to-back trials through the trial server with
  the OS boundary active; MRU = time executing policy steps / wall time of the cell.

    . ./env.sh && python bench/sandbox.py [--acts 2000] [--starts 20] [--mru-trials 3 --mru-steps 300]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.pop('ROS_LOCALHOST_ONLY', None)
os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 80))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

POLICY = '''
import numpy as np

class Policy:
    def reset(self, context):
        self.t = 0

    def act(self, observation):
        self.t += 1
        brightness = float(np.mean(observation.frames['top'][::8, ::8]))   # touches a frame, as policies do
        return (200.0 + 100.0 * ((self.t // 20) % 2), 200.0 + 0.0 * brightness)

    def on_attempt_failed(self, report):
        pass
'''


def observation(step: int):
    import numpy as np

    from enpire_rollout.policy_contract import Observation
    frames = {cam: np.full((96, 96, 3), step % 255, np.uint8) for cam in ('top', 'oblique', 'wrist')}
    return Observation(step=step, attempt=1, time_s=0.1 * step, agent_position=np.array([200.0, 200.0]),
                       agent_velocity=np.zeros(2), frames=frames,
                       table_to_image={cam: np.eye(3) for cam in frames})


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_runners(policy: Path, acts: int, starts: int) -> dict:
    from enpire_rollout import os_sandbox
    from enpire_rollout.policy_contract import TrialContext
    from enpire_rollout.sandbox import PolicyRunner, SandboxLimits

    context = TrialContext(task='pusht', attempts=1, steps_per_attempt=acts, control_hz=10.0,
                           cameras=['top', 'oblique', 'wrist'], seed=1)
    modes = {'os': SandboxLimits(step_deadline_s=1.0), 'python_guard': SandboxLimits(step_deadline_s=1.0,
                                                                                      os_sandbox=False)}
    support = os_sandbox.probe()
    if not support.available:
        raise SystemExit(f'no OS sandbox here: {support.detail}')
    startup = {m: [] for m in modes}
    startup_cpu = {m: [] for m in modes}
    for i in range(starts):
        for mode in (('os', 'python_guard') if i % 2 == 0 else ('python_guard', 'os')):
            runner = PolicyRunner(modes[mode])
            cpu0, t0 = children_cpu_s(), time.perf_counter()
            result = runner.start(policy, context)
            startup[mode].append(time.perf_counter() - t0)
            assert result.ok, result.reason
            runner.close()                   # reaped: its CPU time is now in RUSAGE_CHILDREN
            startup_cpu[mode].append(children_cpu_s() - cpu0)

    runners = {m: PolicyRunner(limits) for m, limits in modes.items()}
    try:
        for r in runners.values():
            assert r.start(policy, context).ok
        obs = [observation(i) for i in range(16)]
        for i in range(50):                  # warm-up: allocator pools, caches
            for r in runners.values():
                r.act(obs[i % 16])
        latency = {m: [] for m in modes}
        for i in range(acts):
            for mode in (('os', 'python_guard') if i % 2 == 0 else ('python_guard', 'os')):
                t0 = time.perf_counter()
                result = runners[mode].act(obs[i % 16])
                latency[mode].append(time.perf_counter() - t0)
                assert result.ok and not result.held, result
        hardening = runners['os'].hardening
    finally:
        for r in runners.values():
            r.close()
    paired_ms = [(o - g) * 1000 for o, g in zip(latency['os'], latency['python_guard'], strict=True)]
    return {
        'os_sandbox': bool(hardening.get('os_boundary')), 'mode': support.mode, 'hardening': hardening,
        'act_overhead_median_ms': round(statistics.median(paired_ms), 4),
        'act_overhead_p99_ms': round(percentile(paired_ms, 0.99), 4),
        'act_ms_median': {m: round(statistics.median(v) * 1000, 4) for m, v in latency.items()},
        'act_ms_p99': {m: round(percentile(v, 0.99) * 1000, 4) for m, v in latency.items()},
        'startup_s': round(statistics.median(startup['os']), 4),
        'startup_s_python_guard': round(statistics.median(startup['python_guard']), 4),
        'startup_cpu_s': round(statistics.median(startup_cpu['os']), 4),
        'startup_cpu_s_python_guard': round(statistics.median(startup_cpu['python_guard']), 4),
        'acts': acts, 'starts': starts,
    }


def bench_mru(policy: Path, tmp: Path, trials: int, steps: int) -> dict:
    from bench.rollout import start_cell
    from enpire_rollout.fleet_client import FleetClient, TrialRequest
    from tests.graph_harness import NodeProcesses, RosTestNode

    procs = NodeProcesses(tmp / 'logs')
    ros = None
    try:
        start_cell(procs, 'bench_sandbox', 'real_time', tmp / 'bags')
        ros = RosTestNode('bench_sandbox')
        fleet = FleetClient(ros.node, ['bench_sandbox'])
        t0 = time.monotonic()
        outs = fleet.run_trials([TrialRequest(policy_path=str(policy), seed=s, attempts=1,
                                              steps_per_attempt=steps) for s in range(trials)])
        report = fleet.report()
        log = procs.log('bench_sandbox_trial').splitlines()
        sandbox_lines = [line for line in log if 'policy sandbox' in line]
        return {'mru': round(report['mru'], 4), 'mru_cell_seconds': report['cells']['bench_sandbox'],
                'mru_trials': len(outs), 'mru_steps': steps, 'mru_wall_s': round(time.monotonic() - t0, 2),
                'mru_failures': [o.failure_reason for o in outs if o.failure_reason],
                'trial_server_sandbox': sandbox_lines[-1].split(']: ')[-1] if sandbox_lines else ''}
    finally:
        if ros is not None:
            ros.close()
        procs.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--acts', type=int, default=2000)
    parser.add_argument('--starts', type=int, default=20)
    parser.add_argument('--mru-trials', type=int, default=3)
    parser.add_argument('--mru-steps', type=int, default=300)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix='enpire_bench_sandbox_'))
    policy = tmp / 'policy.py'
    policy.write_text(POLICY)
    policy.chmod(0o644)
    runners = bench_runners(policy, args.acts, args.starts)
    r = runners
    print(f"per-act overhead of the OS boundary (paired wall clock, {args.acts} alternating calls, 3 cameras "
          f"96x96): median {r['act_overhead_median_ms']:+.3f} ms, p99 {r['act_overhead_p99_ms']:+.3f} ms "
          f"(act median: os {r['act_ms_median']['os']:.3f} ms, python guard "
          f"{r['act_ms_median']['python_guard']:.3f} ms)", file=sys.stderr)
    print(f"start-up per attempt (spawn, load, reset; median of {args.starts}): os {r['startup_s']:.3f} s "
          f"wall, {r['startup_cpu_s']:.3f} s CPU; python guard {r['startup_s_python_guard']:.3f} s wall, "
          f"{r['startup_cpu_s_python_guard']:.3f} s CPU", file=sys.stderr)
    mru = bench_mru(policy, tmp, args.mru_trials, args.mru_steps)
    cell = mru['mru_cell_seconds']
    print(f"harness MRU at 10 Hz real time, {mru['mru_trials']} back-to-back trials of {args.mru_steps} "
          f"steps, OS sandbox: {mru['mru']:.3f} (executing {cell['executing_s']:.1f} s, reset "
          f"{cell['reset_s']:.1f} s, verifying {cell['verifying_s']:.1f} s, idle {cell['idle_s']:.1f} s)",
          file=sys.stderr)
    print(json.dumps({**runners, **mru, 'overhead_measure': 'paired wall clock per act() call (os - python '
                                                            'guard), CPU time (getrusage) for start-up'}))


if __name__ == '__main__':
    main()
