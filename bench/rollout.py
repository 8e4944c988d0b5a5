"""Rollout benchmarks. Prints ONE final JSON line: recording_overhead (fraction) and mru.

- recording overhead: the same trial (same seed and policy) with and without recording, 3 cameras 96x96,
  as-fast pacing, alternating; overhead = (median trial wall with bag - median without) / median without,
  beside its noise (interquartile spread of the unrecorded runs) and the recorder's own busy time (timed
  inside TrialBag, stored in each bag's summary) as a share of the trial's wall time.
- harness MRU: 10 Hz real-time pacing, a policy that answers instantly, back-to-back trials through
  FleetClient; MRU = time executing policy steps / wall time of the cell.

    . ./env.sh && python bench/rollout.py [--steps 200] [--repeats 20] [--mru-trials 3 --mru-steps 300]
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

from bench._cell import bench_cell, harness_mru, oscillating_policy  # noqa: E402  (loopback discovery first)

POLICY = oscillating_policy(touch_frame=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--mru-trials', type=int, default=3)
    parser.add_argument('--mru-steps', type=int, default=300)
    args = parser.parse_args()
    from enpire_rollout.fleet_client import FleetClient, TrialRequest
    from enpire_rollout.trial_bag import bag_custom_data

    tmp = Path(tempfile.mkdtemp(prefix='enpire_bench_rollout_'))
    policy = tmp / 'policy.py'
    policy.write_text(POLICY)
    # The real-time cell streams cameras at 10 Hz: it starts only after the overhead runs, so it cannot
    # steal their CPU.
    with bench_cell('bench_fast', 'as_fast', tmp) as (_cells, ros):
        fast = FleetClient(ros.node, ['bench_fast'])
        walls = {True: [], False: []}
        busy = []   # the recorder's own time (from each bag's summary) / the trial's wall time
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
                t_trial = time.monotonic()
                out = fast.run_trials([TrialRequest(**request, record=record)])[0]
                wall = time.monotonic() - t_trial   # the whole trial: goal to result, bag opened and closed
                assert not out.failure_reason, out.failure_reason
                walls[record].append(round(wall, 4))
                if record:
                    info = json.loads(bag_custom_data(out.bag_path)['enpire.trial'])
                    busy.append(info['recorder_busy_s'] / wall)
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
        print(f'trial wall, {args.steps} steps, median of {args.repeats}: without recording {base:.3f} s, '
              f'with {rec:.3f} s -> overhead {overhead:+.1%} (95% bootstrap interval {ci[0]:+.1%} to '
              f'{ci[1]:+.1%}), paired {paired:+.1%} (interquartile spread without: {noise:.1%})',
              file=sys.stderr)
        print(f'recorder busy (write, serialise, flush, in the trial server) per recorded trial: median '
              f'{statistics.median(busy):.1%} of the trial wall time (max {max(busy):.1%})', file=sys.stderr)
    mru = harness_mru(policy, tmp, args.mru_trials, args.mru_steps, task='pusht')
    cell = mru['mru_cell_seconds']
    print(f"harness MRU at 10 Hz real time, {mru['mru_trials']} back-to-back trials of {args.mru_steps} "
          f"steps: {mru['mru']:.3f} (executing {cell['executing_s']:.1f} s, reset {cell['reset_s']:.1f} s, "
          f"verifying {cell['verifying_s']:.1f} s, idle {cell['idle_s']:.1f} s)", file=sys.stderr)
    print(json.dumps({
        'recording_overhead': round(overhead, 4), 'mru': mru['mru'],
        'recording_overhead_ci95': [round(ci[0], 4), round(ci[1], 4)],
        'recording_overhead_paired': round(paired, 4), 'overhead_noise_iqr': round(noise, 4),
        'recorder_busy_fraction': round(statistics.median(busy), 4),
        'trial_wall_s_without_recording': walls[False], 'trial_wall_s_with_recording': walls[True],
        'steps_per_trial': args.steps, 'cameras': 3, 'camera_size': '96x96',
        'mru_cell_seconds': cell, 'mru_trials': mru['mru_trials'], 'mru_wall_s': mru['mru_wall_s'],
        'mru_failures': mru['mru_failures']}))


if __name__ == '__main__':
    main()
