"""`enpire replay` / `enpire audit` / `enpire --version` as a user meets them: missing paths are clear errors
with a non-zero exit, a replay leaves a live cell's command topics alone unless asked, and the audit video
plays at the rate the camera was recorded."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from enpire_task_pusht import messages as pusht_msgs
from rosbags.rosbag2 import Writer

from enpire_rollout.trial_bag import bag_cdr, typestore

CELL = '/cell_0'
CAMERA_HZ = 5.0


def write_bag(path, steps=10):
    """A small trial-like bag: cell states and commands at 10 Hz, top-camera frames at 5 Hz."""
    store = typestore()
    t = store.types
    with Writer(path, version=9) as writer:
        def add(topic, msgtype):
            return writer.add_connection(f'{CELL}/{topic}', msgtype, typestore=store)
        state = add('cell_state', 'enpire_interfaces/msg/CellState')
        command = add('cmd/target', 'enpire_interfaces/msg/Command')
        image = add('cameras/top/image_raw', 'sensor_msgs/msg/Image')
        for step in range(steps):
            stamp = step * 100_000_000
            time = Time(sec=stamp // 10**9, nanosec=stamp % 10**9)
            header = t['std_msgs/msg/Header'](
                stamp=t['builtin_interfaces/msg/Time'](sec=time.sec, nanosec=time.nanosec), frame_id='table')
            target = (float(step), 2.0)
            cell_state = pusht_msgs.cell_state(step, target, (0.0, 0.0), target, time)
            writer.write(state, stamp, bag_cdr(cell_state))
            writer.write(command, stamp, bag_cdr(pusht_msgs.command(target, time)))
            if step % int(10 / CAMERA_HZ) == 0:
                frame = t['sensor_msgs/msg/Image'](header=header, height=32, width=32, encoding='rgb8',
                                                   is_bigendian=0, step=96,
                                                   data=np.full(32 * 32 * 3, 10 * step, dtype=np.uint8))
                writer.write(image, stamp, store.serialize_cdr(frame, 'sensor_msgs/msg/Image'))
    return path


def enpire(*args):
    return subprocess.run([sys.executable, '-m', 'enpire_bringup.cli', *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_version_prints_and_exits_zero():
    out = enpire('--version')
    assert out.returncode == 0 and out.stdout.startswith('enpire ') and out.stdout.split()[1][0].isdigit()


@pytest.mark.parametrize('command', ['audit', 'replay'])
def test_a_missing_path_is_a_clear_error(command, tmp_path):
    missing = tmp_path / 'no_such_trial'
    out = enpire(command, str(missing))
    assert out.returncode == 2, out
    assert str(missing) in out.stderr and 'Traceback' not in out.stderr, out.stderr
    empty = tmp_path / 'empty'
    empty.mkdir()
    out = enpire(command, str(empty))
    assert out.returncode == 2 and 'metadata.yaml' in out.stderr and 'Traceback' not in out.stderr, out.stderr


def test_audit_video_plays_at_the_recorded_rate(tmp_path):
    import cv2

    from enpire_rollout.audit import audit_bag

    bag = write_bag(tmp_path / 'trial')
    _, videos = audit_bag(bag, tmp_path / 'videos')
    capture = cv2.VideoCapture(videos['top'])
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(CAMERA_HZ, rel=0.01)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_replay_output_topics_and_remaps():
    from enpire_rollout.replay import ReplayError, is_command_topic, output_topic, parse_remaps

    assert is_command_topic('/cell_0/cmd/target') and is_command_topic('/cell_3/cmd/policy_target')
    assert not is_command_topic('/cell_0/cell_state')
    assert output_topic('/cell_0/cell_state', {}, '/replay') == '/replay/cell_0/cell_state'
    remaps = parse_remaps(['/cell_0/cell_state:=/audit/state'])
    assert output_topic('/cell_0/cell_state', remaps, '/replay') == '/audit/state'
    with pytest.raises(ReplayError, match='absolute'):
        parse_remaps(['cell_state:=x'])


@pytest.mark.graph
def test_replay_leaves_commands_alone_unless_asked(ros_node, tmp_path):
    from rosgraph_msgs.msg import Clock

    from enpire_interfaces.msg import CellState, Command
    from enpire_rollout.replay import replay

    bag = write_bag(tmp_path / 'trial')
    node = ros_node.node
    got = {'state': [], 'command': [], 'prefixed': [], 'clock': []}
    node.create_subscription(CellState, f'{CELL}/cell_state', got['state'].append, 100)
    node.create_subscription(Command, f'{CELL}/cmd/target', got['command'].append, 100)
    node.create_subscription(CellState, f'/replay{CELL}/cell_state', got['prefixed'].append, 100)
    node.create_subscription(Clock, '/clock', got['clock'].append, 100)

    counts = replay(bag, rate=0.0, node=node, clock=True, wait_subscribers_s=15)
    assert f'{CELL}/cmd/target' not in counts and counts[f'{CELL}/cell_state'] == 10

    def clock_ns():
        return [c.clock.sec * 10**9 + c.clock.nanosec for c in got['clock']]

    # the bag's last stamp (0.9 s) arrives on /clock, and nothing beyond it
    ros_node.wait_for(lambda: len(got['state']) == 10 and 900_000_000 in clock_ns(),
                      what='the replayed states and the clock up to the bag end', timeout=30)
    assert max(clock_ns()) == 900_000_000
    assert got['command'] == []                      # a live cell's command input was left alone

    counts = replay(bag, rate=0.0, node=node, publish_commands=True, topics=[f'{CELL}/cmd/target'],
                    wait_subscribers_s=15)
    ros_node.wait_for(lambda: len(got['command']) == 10, what='the commands, when asked for', timeout=30)
    assert [list(c.values) for c in got['command']] == [[float(s), 2.0] for s in range(10)]

    replay(bag, rate=0.0, node=node, prefix='/replay', topics=[f'{CELL}/cell_state'], wait_subscribers_s=15)
    ros_node.wait_for(lambda: len(got['prefixed']) == 10, what='states under the /replay prefix', timeout=30)
    assert len(got['state']) == 10                   # nothing more on the live name


@pytest.mark.parametrize('task,why', [('', 'names no task'), ('fold_laundry', "unknown task 'fold_laundry'")])
def test_replay_names_the_task_it_cannot_replay(tmp_path, task, why):
    """The replay finds the task through the registry by the name in the bag; a bag without one, or with a
    task this installation does not know, is an error with the reason (never replayed as some other task)."""
    import json

    from std_msgs.msg import String

    from enpire_rollout.audit_replay import replay_bag
    from enpire_rollout.trial_bag import METADATA_TOPIC

    store = typestore()
    path = tmp_path / 'trial'
    with Writer(path, version=9) as writer:
        meta = writer.add_connection(METADATA_TOPIC, 'std_msgs/msg/String', typestore=store)
        truth = writer.add_connection(f'{CELL}/privileged/ground_truth', 'enpire_interfaces/msg/GroundTruth',
                                      typestore=store)
        writer.write(meta, 0, bag_cdr(String(data=json.dumps({'task': task}))))
        writer.write(truth, 1, bag_cdr(pusht_msgs.ground_truth(0, (256.0, 256.0, 0.5), (80.0, 80.0), 0.3)))
    report = replay_bag(path)
    assert not report.ok and why in report.error, report.error
