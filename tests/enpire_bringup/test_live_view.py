"""`enpire view` serves a running cell to Foxglove: a client speaking the Foxglove WebSocket protocol
connects on loopback, sees every channel advertised with its standard ROS 2 schema, subscribes and
receives the cameras, CameraInfo, /tf_static, the cell state, verdicts and trial events."""
import re
import time

import pytest
from enpire_bringup.cli import main as enpire

from enpire_rollout.trial_bag import typestore
from tests.enpire_bringup.foxglove_ws_client import SUBPROTOCOLS, FoxgloveClient, message_data

CELL = 'cell_0'
CAMERAS = ['top', 'oblique', 'wrist']


def test_view_help_works(capsys):
    with pytest.raises(SystemExit) as exit_:
        enpire(['view', '--help'])
    assert exit_.value.code == 0 and '--port' in capsys.readouterr().out


@pytest.mark.graph
def test_a_foxglove_client_receives_every_channel_of_a_running_cell(node_processes, ros_node):
    from enpire_common import names
    from enpire_common.cell_clock import sim_time_ros_args

    from enpire_interfaces.msg import TrialEvent
    from enpire_interfaces.srv import Verify

    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:=/{CELL}',
                                 '-p', 'task:=pusht'])
    node_processes.start('verify', ['-m', 'enpire_env.verify_node', '--ros-args', '-r', f'__ns:=/{CELL}',
                                    *sim_time_ros_args(CELL), '-p', 'task:=pusht'])
    node_processes.start('view', ['-m', 'enpire_bringup.cli', 'view', '--cell', CELL, '--port', '0'])

    def served():
        found = re.search(r'ws://127\.0\.0\.1:(\d+)', node_processes.log('view'))
        return int(found.group(1)) if found else None
    port = ros_node.wait_for(served, 60, 'the view to serve')

    client = FoxgloveClient('127.0.0.1', port)
    try:
        assert client.protocol in SUBPROTOCOLS
        expected = {f'/{CELL}/{names.CELL_STATE}': 'enpire_interfaces/msg/CellState',
                    f'/{CELL}/{names.VERDICTS}': 'enpire_interfaces/msg/FusedVerdict',
                    f'/{CELL}/{names.TRIAL_EVENTS}': 'enpire_interfaces/msg/TrialEvent',
                    names.TF_STATIC: 'tf2_msgs/msg/TFMessage'}
        for cam in CAMERAS:
            expected[f'/{CELL}/{names.camera_image(cam)}'] = 'sensor_msgs/msg/Image'
            expected[f'/{CELL}/{names.camera_info(cam)}'] = 'sensor_msgs/msg/CameraInfo'
        client.read_until(lambda *_: expected.keys() <= {c['topic'] for c in client.channels.values()}, 30)
        assert client.server_info is not None
        by_topic = {c['topic']: c for c in client.channels.values()}
        for topic, msgtype in expected.items():
            channel = by_topic[topic]
            assert (channel['encoding'], channel['schemaName'], channel['schemaEncoding']) == \
                ('cdr', msgtype, 'ros2msg'), channel
        assert 'uint32 height' in by_topic[f'/{CELL}/{names.camera_image("top")}']['schema']
        assert 'MSG: geometry_msgs/TransformStamped' in by_topic[names.TF_STATIC]['schema']

        subscriptions = {i: by_topic[topic]['id'] for i, topic in enumerate(expected, start=1)}
        topic_of = {i: by_topic[topic]['topic'] for i, topic in enumerate(expected, start=1)}
        client.send_json({'op': 'subscribe',
                          'subscriptions': [{'id': i, 'channelId': c} for i, c in subscriptions.items()]})

        # What only happens during a trial: a trial event, a verdict.
        node = ros_node.node
        events = node.create_publisher(TrialEvent, f'/{CELL}/{names.TRIAL_EVENTS}', 10)
        verify = node.create_client(Verify, f'/{CELL}/{names.VERIFY}')
        assert verify.wait_for_service(timeout_sec=60)
        received: dict[str, list[bytes]] = {}
        deadline = time.monotonic() + 60
        while set(received) < set(expected) and time.monotonic() < deadline:
            events.publish(TrialEvent(trial_id='view_test', event='started'))
            verify.call_async(Verify.Request(task='pusht'))
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                opcode, payload = client.receive()
                if opcode == 0x2 and payload[0] == 0x01:
                    sub_id, _, data = message_data(payload)
                    received.setdefault(topic_of[sub_id], []).append(data)
        assert set(received) == set(expected), f'no messages on {sorted(set(expected) - set(received))}'
    finally:
        client.close()

    store = typestore()

    def last(topic):
        return store.deserialize_cdr(received[topic][-1], expected[topic])
    image = last(f'/{CELL}/{names.camera_image("top")}')
    assert (image.width, image.height, image.encoding) == (96, 96, 'rgb8') and len(image.data) == 96 * 96 * 3
    info = last(f'/{CELL}/{names.camera_info("oblique")}')
    assert info.k[0] > 0 and info.header.frame_id == 'oblique_optical_frame'
    tf = last(names.TF_STATIC)
    assert {t.child_frame_id for t in tf.transforms} == {'top_optical_frame', 'oblique_optical_frame'}
    assert all(t.header.frame_id == names.TABLE_FRAME for t in tf.transforms)
    assert last(f'/{CELL}/{names.TRIAL_EVENTS}').trial_id == 'view_test'
    assert last(f'/{CELL}/{names.VERDICTS}').task == 'pusht'
    assert last(f'/{CELL}/{names.CELL_STATE}').header.frame_id == names.TABLE_FRAME
