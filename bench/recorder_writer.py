"""The recorder's writer on a synthetic 200-step trial, without a graph: its CPU time per trial (and where
it goes, with --profile).

The messages a Push-T cell publishes in a 200-step trial at 10 Hz (CellState and GroundTruth each step, the
policy's and the safe command, three 96x96 rgb8 cameras rendered by the task's cameras with their
CameraInfo and homography, trial events, a verdict), serialised as on the wire, go through BagRecorder as
the recorder node hands them over, recorded as the bringup file has the cell record (cameras every 0.2 s).
The writer's CPU time is its thread's (time.thread_time), as bench/rollout.py reports it. `--paced`: the
messages come over ~3 s while this thread keeps the GIL busy between them, as a cell's executor does in an
as-fast trial; otherwise all at once. `--profile`: cProfile of the writer's work, run on this thread.

    . ./env.sh && python bench/recorder_writer.py [--trials 5] [--steps 200] [--paced] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time

STEP_NS = 100_000_000


def trial_messages(steps: int) -> list[tuple[str, bytes, int]]:
    """(relative topic, CDR, log time) of a trial in the order a cell publishes them."""
    import numpy as np
    from builtin_interfaces.msg import Time
    from enpire_common import names
    from enpire_task_pusht import messages as pusht
    from enpire_task_pusht import render
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from enpire_interfaces.msg import CameraVerdict, FusedVerdict, TableHomography, TrialEvent
    from enpire_rollout.trial_bag import bag_cdr

    out = []
    for step in range(steps):
        t = step * STEP_NS
        stamp = Time(sec=t // 10**9, nanosec=t % 10**9)
        agent = (256 + 150 * np.cos(step / 20), 256 + 150 * np.sin(step / 20))
        block = (256.0 + step * 0.2, 300.0, step * 0.01)
        state = pusht.cell_state(step, agent, (1.0, 0.0), agent, stamp)
        out.append((names.CELL_STATE, bag_cdr(state), t))
        truth = pusht.ground_truth(step, block, agent, 0.3, state.header)
        out.append((names.GROUND_TRUTH, bag_cdr(truth), t))
        for spec in render.DEFAULT_CAMERAS:
            image, h = render.render(render.RenderState(block, agent, step=step), spec)
            header = state.header.__class__(stamp=stamp, frame_id=names.camera_frame(spec.name))
            height, width = image.shape[:2]
            img = Image(header=header, height=height, width=width, encoding='rgb8', step=width * 3,
                        data=image.tobytes())
            info = CameraInfo(header=header, width=width, height=height, k=[80.0, 0, 48, 0, 80, 48, 0, 0, 1])
            homography = TableHomography(header=header, table_to_image=np.ravel(h).astype(float).tolist())
            out += [(names.camera_image(spec.name), serialize_message(img), t),
                    (names.camera_info(spec.name), serialize_message(info), t),
                    (names.camera_homography(spec.name), serialize_message(homography), t)]
        out.append((names.POLICY_COMMAND, serialize_message(pusht.command(agent, stamp)), t + 1))
        out.append((names.CELL_COMMAND, serialize_message(pusht.command(agent, stamp)), t + 2))
        if step % 50 == 0:
            event = TrialEvent(header=state.header, trial_id='bench', event='attempt_started', detail='{}')
            out.append((names.TRIAL_EVENTS, serialize_message(event), t))
    last = out[-1][2]
    judged = FusedVerdict(task='pusht', cameras=[CameraVerdict(camera='top', frame_stamp=stamp)])
    judged.header.stamp = stamp
    out.append((names.TRIAL_VERDICTS, serialize_message(judged), last + 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--paced', action='store_true')
    parser.add_argument('--profile', action='store_true')
    args = parser.parse_args()
    from enpire_common import names

    from enpire_rollout.recording import BagRecorder, Mark, RecorderConfig

    msgs = trial_messages(args.steps)
    config = RecorderConfig(record_camera_period_s=0.2)
    tmp = tempfile.mkdtemp(prefix='enpire_bench_writer_')
    recorder = BagRecorder('bench_cell', config)
    if args.profile:                       # the writer's work on this thread: no writer thread in the way
        recorder.shutdown()
        profile = cProfile.Profile()
    cpu = []
    for i in range(args.trials + 1):       # the first trial pays the imports and typestore: not counted
        if args.profile:
            t0 = time.thread_time()
            if i:
                profile.enable()
            recorder._start(f'trial_{i}', tmp, {'seed': i}, 0)
            for message in msgs:
                recorder._handle(message)
            recorder._close('finished', {})
            profile.disable()
            cpu.append(time.thread_time() - t0)
            continue
        recorder.start(f'trial_{i}', tmp, {'seed': i}, 0).result(30)
        pace = 3.0 / len(msgs) if args.paced else 0.0
        until = time.monotonic()
        for message in msgs:
            recorder.offer(*message)
            until += pace
            while time.monotonic() < until:   # busy, holding the GIL as an executor thread does
                pass
        _path, closed = recorder.stop('finished', {}, [Mark(names.CELL_STATE, count=args.steps)])
        cpu.append(closed.result(60).cpu_s)
    recorder.shutdown()
    if args.profile:
        pstats.Stats(profile, stream=sys.stderr).sort_stats('tottime').print_stats(20)
    print(json.dumps({'writer_cpu_s_per_trial': round(statistics.median(cpu[1:]), 4),
                      'writer_cpu_s': [round(c, 4) for c in cpu[1:]], 'messages_per_trial': len(msgs),
                      'megabytes_per_trial': round(sum(len(m[1]) for m in msgs) / 1e6, 1),
                      'paced': args.paced, 'profiled': args.profile, 'steps': args.steps}))


if __name__ == '__main__':
    main()
