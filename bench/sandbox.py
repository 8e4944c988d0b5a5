"""Policy sandbox benchmark: the OS boundary's cost against the Python-guard-only sandbox, and harness MRU.
Prints ONE final JSON line.

- per-act overhead: two runners with the same policy and observations (3 cameras 96x96), one behind the OS
  boundary (bubblewrap, uid, seccomp), one in the explicitly weaker Python-guard mode (the previous
  sandbox); act() calls alternate between them (the order flips every call) and the overhead is the
  PAIRED wall-clock difference per call, median and p99 in ms.
- start-up per attempt: spawn + load + reset() for each mode, alternating; wall clock, and the CPU time of
  the sandbox's whole process tree (bwrap and the child, from /proc, just before it is closed).
- CPU per act: the sandbox process tree's CPU time over all the act() calls of each mode, per call (the
  seccomp filter's cost shows here, free of the machine's scheduling noise).
- harness MRU: one real-time simulated cell (10 Hz), 3 back-to-back trials through the trial server with
  the OS boundary active; MRU = time executing policy steps / wall time of the cell.

    . ./env.sh && python bench/sandbox.py [--acts 2000] [--starts 20] [--mru-trials 3 --mru-steps 300]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cell import harness_mru, oscillating_policy, tree_cpu_s  # noqa: E402  (loopback discovery first)

POLICY = oscillating_policy(touch_frame=True)


def observation(step: int):
    import numpy as np

    from enpire_rollout.policy_contract import Observation
    frames = {cam: np.full((96, 96, 3), step % 255, np.uint8) for cam in ('top', 'oblique', 'wrist')}
    return Observation(step=step, attempt=1, time_s=0.1 * step, agent_position=np.array([200.0, 200.0]),
                       agent_velocity=np.zeros(2), frames=frames,
                       table_to_image={cam: np.eye(3) for cam in frames})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_runners(policy: Path, acts: int, starts: int) -> dict:
    from enpire_rollout import os_sandbox
    from enpire_rollout.policy_runtime import trial_context
    from enpire_rollout.sandbox import PolicyRunner, SandboxLimits

    context = trial_context('pusht', attempts=1, steps_per_attempt=acts, control_hz=10.0,
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
            t0 = time.perf_counter()
            result = runner.start(policy, context)
            startup[mode].append(time.perf_counter() - t0)
            assert result.ok, result.reason
            startup_cpu[mode].append(tree_cpu_s(runner.proc.pid))    # all of it went into the start-up
            runner.close()

    runners = {m: PolicyRunner(limits) for m, limits in modes.items()}
    try:
        for r in runners.values():
            assert r.start(policy, context).ok
        obs = [observation(i) for i in range(16)]
        for i in range(50):                  # warm-up: allocator pools, caches
            for r in runners.values():
                r.act(obs[i % 16])
        latency = {m: [] for m in modes}
        cpu0 = {m: tree_cpu_s(r.proc.pid) for m, r in runners.items()}
        for i in range(acts):
            for mode in (('os', 'python_guard') if i % 2 == 0 else ('python_guard', 'os')):
                t0 = time.perf_counter()
                result = runners[mode].act(obs[i % 16])
                latency[mode].append(time.perf_counter() - t0)
                assert result.ok and not result.held, result
        act_cpu_ms = {m: (tree_cpu_s(r.proc.pid) - cpu0[m]) / acts * 1000 for m, r in runners.items()}
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
        'act_cpu_ms': {m: round(v, 4) for m, v in act_cpu_ms.items()},
        'act_cpu_overhead_ms': round(act_cpu_ms['os'] - act_cpu_ms['python_guard'], 4),
        'startup_s': round(statistics.median(startup['os']), 4),
        'startup_s_python_guard': round(statistics.median(startup['python_guard']), 4),
        'startup_cpu_s': round(statistics.median(startup_cpu['os']), 4),
        'startup_cpu_s_python_guard': round(statistics.median(startup_cpu['python_guard']), 4),
        'acts': acts, 'starts': starts,
    }


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
          f"{r['act_ms_median']['python_guard']:.3f} ms); sandbox CPU per act: os "
          f"{r['act_cpu_ms']['os']:.3f} ms, python guard {r['act_cpu_ms']['python_guard']:.3f} ms",
          file=sys.stderr)
    print(f"start-up per attempt (spawn, load, reset; median of {args.starts}): os {r['startup_s']:.3f} s "
          f"wall, {r['startup_cpu_s']:.3f} s CPU; python guard {r['startup_s_python_guard']:.3f} s wall, "
          f"{r['startup_cpu_s_python_guard']:.3f} s CPU", file=sys.stderr)
    mru = harness_mru(policy, tmp, args.mru_trials, args.mru_steps, task='pusht', name='bench_sandbox')
    cell = mru['mru_cell_seconds']
    print(f"harness MRU at 10 Hz real time, {mru['mru_trials']} back-to-back trials of {args.mru_steps} "
          f"steps, OS sandbox: {mru['mru']:.3f} (executing {cell['executing_s']:.1f} s, reset "
          f"{cell['reset_s']:.1f} s, verifying {cell['verifying_s']:.1f} s, idle {cell['idle_s']:.1f} s)",
          file=sys.stderr)
    print(json.dumps({**runners, **mru, 'overhead_measure': 'act: paired wall clock per call (os - python '
                      'guard) and the sandbox process tree CPU per call; start-up: wall clock and tree CPU'}))


if __name__ == '__main__':
    main()
