"""Rollout benchmarks. Prints ONE final JSON line: recording_cpu_share, sim_time_wall_overhead, mru, and
the recording overhead in wall time.

- recording CPU share (CPU clocks): the same trial (same seed and policy, 3 cameras 96x96 at 10 Hz, as-fast
  pacing) recorded as the bringup file has the cell record (every second frame; --camera-period 0: every
  frame); the recorder's CPU time while the bag was open (its writer thread's CPU time and its
  subscription callbacks' time, both measured with time.thread_time inside the recorder, in the bag's
  summary) over the CPU time of every process of the cell during the trial (the cell's process(es), the
  sandbox child and anything else they started, user + system, from /proc, goal sent to result).
- recording overhead (wall clock, time.monotonic): the same trial with and without recording, alternating;
  overhead = (median trial wall with bag - median without) / median without, beside its noise. Without
  recording the recorder still takes the cell's topics (and drops them): this is the cost of writing.
- harness MRU (the fleet client's report, the trial server's phase times): 10 Hz real-time pacing, a
  policy that answers instantly, back-to-back trials; MRU = time executing policy steps / the cell's time.
- sim-time wall overhead (wall clock of this client vs cell time): in those 10 Hz real-time trials of N
  steps, the wall time between the first and the last step's state over N/10 s, minus 1 (how much slower
  than real time the cell ran).

    . ./env.sh && python bench/rollout.py [--steps 200] [--repeats 20] [--mru-trials 3 --mru-steps 300]
                                          [--camera-period 0]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cell import bench_cell, harness_mru, oscillating_policy, tree_cpu_s  # noqa: E402  (loopback first)

POLICY = oscillating_policy(touch_frame=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--mru-trials', type=int, default=3)
    parser.add_argument('--mru-steps', type=int, default=300)
    parser.add_argument('--camera-period', type=float, default=None,
                        help="the recorder's record_camera_period_s in the recorded trials (default: the "
                             "bringup file's, 0.2 s: every second frame at 10 Hz; 0: every frame)")
    args = parser.parse_args()
    from enpire_common import names
    from rclpy.qos import DurabilityPolicy, QoSProfile

    from enpire_interfaces.msg import BagClosed
    from enpire_rollout.fleet_client import FleetClient, TrialRequest
    from enpire_rollout.trial_bag import bag_custom_data

    tmp = Path(tempfile.mkdtemp(prefix='enpire_bench_rollout_'))
    policy = tmp / 'policy.py'
    policy.write_text(POLICY)
    # The real-time cell streams cameras at 10 Hz: it starts only after the overhead runs, so it cannot
    # steal their CPU.
    recorder = {} if args.camera_period is None else {'record_camera_period_s': args.camera_period}
    with bench_cell('bench_fast', 'as_fast', tmp, recorder=recorder) as (cells, ros):
        fast = FleetClient(ros.node, ['bench_fast'])
        roots = list(cells.supervisor.pids().values())
        closed = {}     # bag path -> the recorder's announcement (its CPU time, the close included)
        ros.node.create_subscription(BagClosed, names.cell_name('bench_fast', names.RECORDER_CLOSED),
                                     lambda msg: closed.__setitem__(msg.bag_path, msg),
                                     QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        walls = {True: [], False: []}
        shares, recorder_cpu, cell_cpu, split = [], [], [], []
        request = {'task': 'pusht', 'policy_path': str(policy), 'seed': 4, 'attempts': 1,
                   'steps_per_attempt': args.steps}
        # Warm-up: page cache, the bag folder, the sandbox's first imports, allocator pools; the first
        # three pairs of a fresh cell run 10-20% slower than the rest, which would only add noise.
        for _ in range(3):
            for record in (False, True):
                fast.run_trials([TrialRequest(**request, record=record)])
        for i in range(args.repeats):
            # Alternate which goes first, so a drift in machine load hits both alike.
            for record in ((False, True) if i % 2 == 0 else (True, False)):
                cpu0, t_trial = sum(map(tree_cpu_s, roots)), time.monotonic()
                out = fast.run_trials([TrialRequest(**request, record=record)])[0]
                wall = time.monotonic() - t_trial   # the whole trial: goal to result, bag opened and closed
                cpu = sum(map(tree_cpu_s, roots)) - cpu0
                assert not out.failure_reason, out.failure_reason
                walls[record].append(round(wall, 4))
                if record:
                    ros.wait_for(lambda path=out.bag_path: path in closed, 30.0, 'the bag announced closed')
                    record = json.loads(bag_custom_data(out.bag_path)['enpire.trial'])
                    summary, camera_period = record['summary'], record['recorder']['record_camera_period_s']
                    split.append((summary['recorder_writer_cpu_s'], summary['recorder_callback_cpu_s']))
                    recorder_cpu.append(round(closed[out.bag_path].recorder_cpu_s, 4))
                    cell_cpu.append(round(cpu, 3))
                    shares.append(closed[out.bag_path].recorder_cpu_s / cpu)
        base, rec = statistics.median(walls[False]), statistics.median(walls[True])
        overhead = (rec - base) / base
        # The same, pair by pair (each pair ran back to back): robust to the machine's drift over the run.
        paired = statistics.median(w - b for w, b in zip(walls[True], walls[False], strict=True)) / base
        # 95% bootstrap interval of the median-based overhead: how far the run's noise lets it move.
        rng = random.Random(0)
        boot = sorted(
            (statistics.median(rng.choices(walls[True], k=len(walls[True])))
             - (b := statistics.median(rng.choices(walls[False], k=len(walls[False]))))) / b
            for _ in range(2000))
        ci = (boot[50], boot[1949])
        # Run-to-run spread of the same unrecorded trial: an overhead smaller than this is noise.
        q = statistics.quantiles(walls[False], n=4)
        noise = (q[2] - q[0]) / base
        share = statistics.median(shares)
        print(f'recording CPU share, {args.steps}-step recorded trials, median of {args.repeats}: the '
              f'recorder {statistics.median(recorder_cpu):.3f} s CPU of the cell\'s '
              f'{statistics.median(cell_cpu):.2f} s -> {share:.1%} (max {max(shares):.1%}); of it the writer '
              f'thread {statistics.median(w for w, _ in split):.3f} s, the callbacks '
              f'{statistics.median(c for _, c in split):.3f} s', file=sys.stderr)
        print(f'trial wall, {args.steps} steps, median of {args.repeats}: without recording {base:.3f} s, '
              f'with {rec:.3f} s -> overhead {overhead:+.1%} (95% bootstrap interval {ci[0]:+.1%} to '
              f'{ci[1]:+.1%}), paired {paired:+.1%} (interquartile spread without: {noise:.1%})',
              file=sys.stderr)
    mru = harness_mru(policy, tmp, args.mru_trials, args.mru_steps, task='pusht')
    cell = mru['mru_cell_seconds']
    lag = mru['sim_time_wall_overhead']
    print(f"harness MRU at 10 Hz real time, {mru['mru_trials']} back-to-back trials of {args.mru_steps} "
          f"steps: {mru['mru']:.3f} (executing {cell['executing_s']:.1f} s, reset {cell['reset_s']:.1f} s, "
          f"verifying {cell['verifying_s']:.1f} s, idle {cell['idle_s']:.1f} s); sim-time wall overhead "
          f"per trial {lag}", file=sys.stderr)
    print(json.dumps({
        'recording_cpu_share': round(share, 4),
        'sim_time_wall_overhead': round(statistics.median(lag), 4) if lag else None, 'mru': mru['mru'],
        'recording_cpu_share_max': round(max(shares), 4), 'recorder_cpu_s': recorder_cpu,
        'cell_cpu_s_recorded_trial': cell_cpu, 'recorder_writer_callback_cpu_s': split,
        'recording_overhead': round(overhead, 4),
        'recording_overhead_ci95': [round(ci[0], 4), round(ci[1], 4)],
        'recording_overhead_paired': round(paired, 4), 'overhead_noise_iqr': round(noise, 4),
        'trial_wall_s_without_recording': walls[False], 'trial_wall_s_with_recording': walls[True],
        'steps_per_trial': args.steps, 'cameras': 3, 'camera_size': '96x96',
        'record_camera_period_s': camera_period,
        'sim_time_wall_overhead_per_trial': lag, 'mru_steps': args.mru_steps,
        'mru_cell_seconds': cell, 'mru_trials': mru['mru_trials'], 'mru_wall_s': mru['mru_wall_s'],
        'mru_failures': mru['mru_failures'],
        'clocks': {'recording_cpu_share': 'CPU time: recorder thread_time / cell processes from /proc',
                   'recording_overhead': 'wall (time.monotonic), as-fast cell',
                   'sim_time_wall_overhead': 'wall (time.monotonic at receipt) over cell time (steps/10 Hz)',
                   'mru': "the trial server's phase clock (time.monotonic), summed by the fleet client"}}))


if __name__ == '__main__':
    main()
