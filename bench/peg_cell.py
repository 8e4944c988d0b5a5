"""Speed of the peg-insertion cell through the sim_cell node: lockstep steps per second with no camera
watched, and with the three MuJoCo cameras (96 px) subscribed (every step renders and publishes them), plus
the same physics and rendering in-process for comparison. CPU of the node from /proc.

Run: `. ./env.sh && ROS_DOMAIN_ID=<free> python bench/peg_cell.py [--steps N]`. Ends with one JSON line:
node_steps_per_s, node_steps_per_s_3cam, node_render_fps_3cam, node_cores_*, inproc_steps_per_s,
inproc_render_fps_3cam.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault('MUJOCO_GL', 'egl')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

CAMERAS = ('mouth_left', 'mouth_right', 'behind_arm')


def actions(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(0, 0.6, (n, 4)), -1, 1).astype(np.float32)


def cpu_s(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def in_process(steps: int) -> dict:
    from enpire_task_peg.cell import PegCell
    from enpire_task_peg.distributions import sample_initial_state

    cell = PegCell()
    initial = sample_initial_state(0)
    cell.place_objects(initial.scene(), initial.tool())
    t0 = time.perf_counter()
    for action in actions(steps):
        cell.step(action.astype(np.float64))
    physics = steps / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(steps // 4):
        for cam in CAMERAS:
            cell.render(cam)
    render = steps // 4 / (time.perf_counter() - t0)
    cell.close()
    return {'inproc_steps_per_s': round(physics, 1), 'inproc_render_fps_3cam': round(render, 1)}


def through_node(steps: int, tmp: Path) -> dict:
    from enpire_common import names
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from enpire_interfaces.msg import CellState, Command
    from tests.graph_harness import NodeProcesses, RosTestNode

    procs = NodeProcesses(tmp / 'logs')
    proc = procs.start('peg_bench', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', '__ns:=/peg_bench',
                                     '-p', 'task:=peg_insertion', '-p', 'idle_publish_hz:=0.0'])
    ros = RosTestNode('peg_bench_client')
    out: dict = {}
    try:
        node, lock = ros.node, threading.Lock()
        states, frames = [], {cam: 0 for cam in CAMERAS}

        def on_state(msg):
            with lock:
                states.append(msg.step)
        node.create_subscription(CellState, '/peg_bench/' + names.CELL_STATE, on_state, 100)
        cmd = node.create_publisher(Command, '/peg_bench/' + names.CELL_COMMAND, 10)
        ros.wait_for(lambda: cmd.get_subscription_count() > 0, 120, 'the peg cell')

        def run(label: str) -> None:
            with lock:
                start = len(states)
            cpu0, t0 = cpu_s(proc.pid), time.monotonic()
            for i, action in enumerate(actions(steps)):
                msg = Command(values=[float(v) for v in action])
                msg.header.frame_id = 'world'
                cmd.publish(msg)
                ros.wait_for(lambda i=i: len(states) - start > i, 60, 'the step')
            wall = time.monotonic() - t0
            out[f'node_steps_per_s{label}'] = round(steps / wall, 1)
            out[f'node_cores{label}'] = round((cpu_s(proc.pid) - cpu0) / wall, 2)

        run('')
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)

        def count(cam):
            def callback(_msg):
                with lock:
                    frames[cam] += 1
            return callback
        subs = [node.create_subscription(Image, f'/peg_bench/{names.camera_image(cam)}', count(cam), qos)
                for cam in CAMERAS]
        ros.wait_for(lambda: all(s.get_publisher_count() for s in subs) and all(frames.values()), 60,
                     'frames of every camera')
        before = dict(frames)
        run('_3cam')
        received = min(frames[c] - before[c] for c in CAMERAS)
        out['node_render_fps_3cam'] = round(out['node_steps_per_s_3cam'] * received / steps, 1)
        out['frames_received_per_camera'] = received
    finally:
        ros.close()
        procs.stop_all()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=400)
    args = ap.parse_args(argv)
    result = {'steps': args.steps, **in_process(args.steps)}
    with tempfile.TemporaryDirectory() as tmp:
        result.update(through_node(args.steps, Path(tmp)))
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
