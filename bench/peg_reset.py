"""Peg insertion: the reset's 3-D estimator (enpire_task_peg.reset.locate_layout) against the layouts it
should see. Seeded layouts in and out of distribution (metaworld's ranges, the 5 cm wider `wide` one) are
placed by metaworld's reset and rendered by the cell's three cameras at 96 px; peg and box are located from
the calibrated views and compared with the layout. Prints per distribution the errors in metres (median,
p95, max), how many layouts were not located, how many exceed the task's 0.01 m tolerances, and the
estimator's CPU time per reset; one JSON line at the end.

    python bench/peg_reset.py [--layouts 50] [--first-seed 20000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault('MUJOCO_GL', 'egl')
ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / 'ros2_ws/src/tasks/enpire_task_peg',):   # the source, whether installed or not
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import numpy as np  # noqa: E402
from enpire_task_peg.render import CellCameras  # noqa: E402
from enpire_task_peg.reset import locate_layout, reset_errors  # noqa: E402
from enpire_task_peg.simulator import DISTRIBUTIONS, PegSimulator, sample_layout  # noqa: E402
from enpire_task_peg.task import TASK  # noqa: E402
from enpire_task_peg.verification.locate import View  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--layouts', type=int, default=50, help='layouts per distribution')
    parser.add_argument('--first-seed', type=int, default=20000)
    args = parser.parse_args()
    sim = PegSimulator()
    cams = CellCameras(sim.model, 96, 96)
    views = {name: View.from_camera_info(cams.camera_info(name)) for name in cams.names}
    tolerances = TASK.reset.tolerances
    result = {}
    for distribution in DISTRIBUTIONS:
        errors = {name: [] for name in tolerances}
        not_located, beyond, cpu = [], 0, []
        for seed in range(args.first_seed, args.first_seed + args.layouts):
            layout = sample_layout(seed, distribution)
            sim.reset(layout)
            frames = cams.render_all(sim.data)
            t0 = time.process_time()
            located, why, _ = locate_layout(frames, views)
            cpu.append(time.process_time() - t0)
            if located is None:
                not_located.append(why)
                continue
            measured = reset_errors(layout.rand_vec(), located)
            beyond += any(measured[n] > tol for n, tol in tolerances.items())
            for name, value in measured.items():
                errors[name].append(value)
        summary = {'layouts': args.layouts, 'not_located': len(not_located), 'beyond_tolerance': int(beyond),
                   'cpu_s_median': round(float(np.median(cpu)), 3)}
        for name, values in errors.items():
            if values:
                summary[f'{name}_median'] = round(float(np.median(values)), 4)
                summary[f'{name}_p95'] = round(float(np.percentile(values, 95)), 4)
                summary[f'{name}_max'] = round(float(max(values)), 4)
        if not_located:
            summary['not_located_why'] = not_located[:3]
        print(json.dumps({'distribution': distribution, **summary}), flush=True)
        result[distribution] = summary
    cams.close()
    sim.close()
    print(json.dumps(result))


if __name__ == '__main__':
    main()
