"""N simulated cells with EN (safety, verify, reset), rollout (trial server) and the agent team.

    ros2 launch enpire_bringup sim_cells.launch.py cells:=2 [skip:=agents] [use_sim_time:=false]

The nodes, namespaces (cell_0..N-1), parameters and remaps come from the bringup file
(enpire_bringup/config/bringup/sim_cells.yaml), the same one `enpire up sim_cells --cells 2` starts
on machines without `ros2 launch`. The safety nodes are managed: the launch configures and activates them.
"""
from enpire_bringup.launch_description import bringup_launch_description


def generate_launch_description():
    return bringup_launch_description(default_bringup='sim_cells')
