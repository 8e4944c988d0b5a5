"""Build a `ros2 launch` description from a bringup file (lab machines with system ROS 2 and launch_ros).

The launch files in the repository's `launch/` folder are thin wrappers around `bringup_launch_description`
so that `ros2 launch` and `enpire up` start the very same nodes from the very same YAML. Launch
arguments: `bringup` (path or name of a bringup file), `cells` (count; default the file's),
`only` / `skip` (comma-separated globs of node labels or names, as `enpire up --only/--skip`),
`use_sim_time` ('': as the bringup file says, e.g. a simulated cell's nodes on their cell's clock;
true / false: every node follows /clock or not), `compose` (`false`: every node alone, as
`enpire up --separate`). Managed nodes (`lifecycle: true`) start as launch_ros LifecycleNodes that the
launch configures and then activates (what `enpire up` does).

A composed cell (the bringup file's `compose`) is one launch_ros Node running our container
(`python -m enpire_common.composition`, its nodes and their arguments on its command line): rclpy nodes
are not rclcpp components, so a ComposableNodeContainer cannot load them. Its managed nodes autostart
(`autostart:=true`): launch's lifecycle events address a node process, not a node inside a container.

What `ros2 launch` does not take from the file: `after` and `ready` (launch starts every node at once;
the nodes wait for the services and actions they use), and the backoff growth and restart limit (launch
respawns after a fixed `backoff_s`). A `required` node that exits shuts the launch down, as under `enpire up`.
"""
from __future__ import annotations

import dataclasses
import sys

from enpire_common import bringup_file


def node_actions(expansion: bringup_file.Expansion, python: str = sys.executable,
                 use_sim_time: bool | None = None, compose: bool | None = None) -> list:
    """One launch_ros Node per process of the expansion (python -m modules run through the interpreter; a
    composed cell as one container process); managed nodes alone as LifecycleNode, configured once
    started and activated once inactive. `use_sim_time` overrides every node's (None: the file's)."""
    from launch.actions import Shutdown
    from launch_ros.actions import LifecycleNode, Node

    forced = {} if use_sim_time is None else {'use_sim_time': use_sim_time}
    actions = []
    for process in expansion.processes(compose):
        respawn = process.restart.policy != 'never'
        common = dict(respawn=respawn, respawn_delay=process.restart.backoff_s if respawn else 0.0,
                      on_exit=([Shutdown(reason=f'required node {process.label} exited')]
                               if process.required and not respawn else None),
                      output='screen', emulate_tty=False)
        if process.composed:
            nodes = [dataclasses.replace(node, parameters={**node.parameters, **forced,
                                                           **({'autostart': True} if node.lifecycle else {})})
                     for node in process.nodes]
            argv = dataclasses.replace(process, nodes=nodes).argv(python)
            actions.append(Node(executable=argv[0], arguments=argv[1:], additional_env=process.env, **common))
            continue
        node = process.nodes[0]
        if node.module:
            executable, package, arguments = python, None, ['-m', node.module]
        elif node.cmd:
            executable, package, arguments = node.cmd[0], None, list(node.cmd[1:])
        else:
            executable, package, arguments = node.executable, node.package, []
        overrides = {**node.parameters, **forced}
        kind = LifecycleNode if node.lifecycle else Node
        actions.append(kind(
            package=package, executable=executable, arguments=arguments,
            name=node.node_name or (node.name if node.lifecycle else None),
            namespace=node.namespace, parameters=[*node.params_files, overrides],
            remappings=list(node.remaps.items()), additional_env=node.env, **common))
        if node.lifecycle:
            actions += lifecycle_manager(actions[-1])
    return actions


def lifecycle_manager(lifecycle_node) -> list:
    """launch_ros events that do what `enpire up` does for a managed node: configure, then activate."""
    import lifecycle_msgs.msg
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState

    def change(transition):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(lifecycle_node),
                                           transition_id=transition))
    return [
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=lifecycle_node, goal_state='inactive',
            entities=[change(lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE)])),
        change(lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE),
    ]


def bringup_launch_description(default_bringup: str):
    """A LaunchDescription whose nodes are expanded from the bringup file when the launch runs."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration

    from launch import LaunchDescription

    def expand(context):
        path = LaunchConfiguration('bringup').perform(context)
        cells = LaunchConfiguration('cells').perform(context)
        only = [g for g in LaunchConfiguration('only').perform(context).split(',') if g]
        skip = [g for g in LaunchConfiguration('skip').perform(context).split(',') if g]
        sim_time = LaunchConfiguration('use_sim_time').perform(context).lower()
        sim_time = None if not sim_time else sim_time in ('true', '1', 'yes')
        compose = LaunchConfiguration('compose').perform(context).lower()
        task = LaunchConfiguration('task').perform(context) or None
        expansion = bringup_file.expand(bringup_file.load(path), cells=int(cells) if cells else None,
                                        task=task)
        return node_actions(expansion.select(only, skip), use_sim_time=sim_time,
                            compose=False if compose in ('false', '0', 'no') else None)

    return LaunchDescription([
        DeclareLaunchArgument('bringup', default_value=default_bringup,
                              description='bringup YAML: a path or a name of config/bringup'),
        DeclareLaunchArgument('cells', default_value='', description="number of cells (default: the file's)"),
        DeclareLaunchArgument('task', default_value='',
                              description="the task the cells run (default: the file's)"),
        DeclareLaunchArgument('only', default_value='',
                              description='comma-separated globs of nodes to start'),
        DeclareLaunchArgument('skip', default_value='',
                              description='comma-separated globs of nodes to skip'),
        DeclareLaunchArgument('use_sim_time', default_value='',
                              description="'': as the bringup file says (a simulated cell: its own clock); "
                                          'true / false: every node follows /clock (`enpire replay --clock`) '
                                          'or not'),
        DeclareLaunchArgument('compose', default_value='',
                              description="false: every node alone; default: as the bringup file composes"),
        OpaqueFunction(function=expand),
    ])


def include_installed(launch_file: str):
    """The installed enpire_bringup launch file of that name, every launch argument passed through: what the
    repository's `launch/` wrappers return, so `ros2 launch launch/<file>` works from a checkout."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    from launch import LaunchDescription

    share = get_package_share_directory('enpire_bringup')
    return LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(f'{share}/launch/{launch_file}'))])
