"""A real cell: camera relay, calibration, the robot command adapter, safety limits, EN (verify, reset),
rollout.

    ros2 launch enpire_bringup real_cell.launch.py [bringup:=my_lab_cell.yaml] [use_sim_time:=false]

The nodes and their parameters come from the bringup file (enpire_bringup/config/bringup/real_cell.yaml,
adapters configured in enpire_bringup/config/real_cell_adapters.yaml), the same one
`enpire up real_cell` starts on machines without `ros2 launch`. The managed nodes (camera relay,
command adapter, safety) are configured and activated by the launch once they have started.
"""
from enpire_bringup.launch_description import bringup_launch_description


def generate_launch_description():
    return bringup_launch_description(default_bringup='real_cell')
