"""The command adapter's FollowJointTrajectory is the standard control_msgs one, whether control_msgs comes
from a ROS 2 distribution or from the workspace's stand-in (ros2_ws/compat/control_msgs, built where it is
missing): the type hashes of the installed package equal those of the stand-in's definition text."""
import json
import re
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

COMPAT = Path(__file__).resolve().parents[2] / 'ros2_ws' / 'compat' / 'control_msgs'


def _qualified(text: str) -> str:
    pattern = r'^(JointTolerance|JointComponentTolerance)\[\]'
    return re.sub(pattern, r'control_msgs/msg/\1[]', text, flags=re.M)


def stand_in_hashes() -> dict[str, str]:
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name in ('JointTolerance', 'JointComponentTolerance'):
        text = (COMPAT / 'msg' / f'{name}.msg').read_text()
        types.update(get_types_from_msg(text, f'control_msgs/msg/{name}'))
    goal, result, feedback = (COMPAT / 'action' / 'FollowJointTrajectory.action').read_text().split('\n---\n')
    for part, text in (('Goal', goal), ('Result', result), ('Feedback', feedback)):
        name = f'control_msgs/action/FollowJointTrajectory_{part}'
        types.update(get_types_from_msg(_qualified(text), name))
    store.register(types)
    return {name: store.hash_rihs01(name) for name in types}


def test_installed_control_msgs_has_the_hashes_of_the_standard_definition():
    from control_msgs.action import FollowJointTrajectory  # importable: installed or built here

    assert FollowJointTrajectory.Result.PATH_TOLERANCE_VIOLATED == -4
    share = Path(get_package_share_directory('control_msgs'))
    described = json.loads((share / 'action' / 'FollowJointTrajectory.json').read_text())
    installed = {h['type_name']: h['hash_string'] for h in described['type_hashes']}
    expected = stand_in_hashes()
    assert len(expected) == 5
    for name, digest in expected.items():
        assert installed[name] == digest, name
