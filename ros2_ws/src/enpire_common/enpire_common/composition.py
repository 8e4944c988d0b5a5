"""Several nodes in one process: one rclpy context, one executor, one DDS participant (ROS 2 composition).

    python -m enpire_common.composition [--executor inline] \\
        enpire_sim.sim_cell_node:SimCellNode --ros-args -r __ns:=/cell_0 --params-file sim_cell.yaml -- \\
        enpire_env.safety_node:SafetyNode --ros-args -r __ns:=/cell_0 -p autostart:=true -- ...
    enpire_cell ...                                    (the same, as a console script)

Each node is named by its class as a `module:Class` string (as a composable node's plugin name) and takes
its own `--ros-args ... --` (namespace, node name, parameter files, `-p` overrides, remaps such as
`-r /clock:=/cell_0/clock`): the class is built with `cli_args=` those arguments, keeping its own default
node name. A `--ros-args ... --` before the first node applies to every node (a log level). Start-up,
autostart of managed nodes (`-p autostart:=true`), signals and exit codes are `node_main.run_nodes`'s:
0 on SIGINT/SIGTERM, 2 with the reason when a node cannot start (a bad parameter, a missing file, an
unknown class). Every node module keeps its own `main()` to run alone (a safety node beside a driver).
No higher layer is imported: the classes are found by name.

The executor (`--executor`), chosen by measurement: `python bench/cell_executors.py` (one simulated cell of
sim_cells.yaml composed in one process; CPU of the cell process and its sandbox child from /proc; idle:
lockstep cell, nobody commanding it, and real-time cell; active: a recorded 200-step trial at 10 Hz).
A cell's action goals wait inside for what the same executor delivers (a trial for the cell states, the
reset and the verdicts; a reset for its placement and verification), so the executor must run a goal
without blocking everything else:
- `inline` (default, enpire_common.executors.InlineCallbacksExecutor): messages, timers and service
  replies on the spin thread, each goal (a task) in a worker thread. Runs the trial; the cheapest that
  does (2026-12-07, this 2-core machine shared with other work: idle 0.021 cores
  lockstep, 0.102 real time; trial 0.159).
- `submit_once` (SubmitOnceExecutor): every callback handed to a thread pool. Runs the trial, but each
  callback pays a thread hand-off (idle 0.032 / 0.141, trial 0.231).
- `single` (rclpy SingleThreadedExecutor): idle 0.021 / 0.126, but the trial's goal blocks
  the only thread: its reset goal is never dispatched and the trial ends "reset goal timed out". Goals
  rewritten as coroutines awaiting worker threads would run on it (an awaiting task costs nothing
  there), which is what `inline` does for every task without touching the nodes.
- `events` (rclpy.experimental.EventsExecutor, this wheel): the cell never came up (its services, the
  safety node's lifecycle services among them, went unanswered for 150 s), it ignored SIGINT (SIGKILLed
  after the grace) and a task awaiting a future busy-spins (0.49 CPU s in 3 s; the others 0.01).
"""
from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from rclpy.executors import Executor, SingleThreadedExecutor

from enpire_common.executors import InlineCallbacksExecutor, SubmitOnceExecutor
from enpire_common.node_main import EXIT_CANNOT_START, run_nodes

PLUGIN = re.compile(r'[A-Za-z_][\w.]*:[A-Za-z_]\w*')
ROS_ARGS, END = '--ros-args', '--'


def _events_executor() -> Executor:
    from rclpy.experimental import EventsExecutor
    return EventsExecutor()


EXECUTORS: dict[str, Callable[[], Executor]] = {
    'inline': InlineCallbacksExecutor,
    'submit_once': lambda: SubmitOnceExecutor(num_threads=8),
    'single': SingleThreadedExecutor,
    'events': _events_executor,
}
DEFAULT_EXECUTOR = 'inline'


@dataclass
class ComposedNode:
    """One node of the process: its class as `module:Class` and its own ROS arguments."""
    plugin: str
    ros_args: list[str] = field(default_factory=list)   # '--ros-args ...' (without the closing '--')

    @property
    def label(self) -> str:
        return self.plugin.rpartition(':')[2]

    def argv(self) -> list[str]:
        return [self.plugin, *(self.ros_args + [END] if self.ros_args else [])]


def composed_argv(nodes: list[ComposedNode], executor: str | None = None,
                  process_ros_args: list[str] | None = None) -> list[str]:
    """The container's arguments for these nodes (what the bringup file and the launch file start)."""
    head = ['--executor', executor] if executor else []
    if process_ros_args:
        head += [*process_ros_args, END]
    return head + [token for node in nodes for token in node.argv()]


def parse_nodes(tokens: list[str]) -> tuple[list[str], list[ComposedNode]]:
    """Split the node part of the command line into process-wide ROS arguments and the nodes; ValueError
    with the offending token when it is not `[--ros-args ... --] (module:Class [--ros-args ... --])+`."""
    process_args: list[str] = []
    nodes: list[ComposedNode] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == ROS_ARGS:
            end = tokens.index(END, i) if END in tokens[i:] else len(tokens)
            section = tokens[i:end]
            if nodes:
                if nodes[-1].ros_args:
                    raise ValueError(f'{nodes[-1].plugin}: a second --ros-args section')
                nodes[-1].ros_args = section
            elif end == len(tokens):
                raise ValueError('process-wide --ros-args must end with -- before the first node')
            else:
                process_args = section
            i = end + 1
        elif PLUGIN.fullmatch(token):
            nodes.append(ComposedNode(token))
            i += 1
        else:
            raise ValueError(f'expected module:Class or --ros-args, got {token!r}')
    if not nodes:
        raise ValueError('no node to run: name at least one module:Class')
    return process_args, nodes


def load_class(plugin: str) -> type:
    """The node class a `module:Class` string names; ValueError saying what is missing."""
    module_name, _, class_name = plugin.partition(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f'{plugin}: cannot import {module_name}: {exc}') from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f'{plugin}: {module_name} has no class {class_name}')
    return cls


def factory(cls: type, ros_args: list[str]) -> Callable:
    return lambda: cls(cli_args=list(ros_args))


USAGE = f"""usage: enpire_cell [--executor {{{','.join(sorted(EXECUTORS))}}}] [--ros-args ... --] \\
    module:Class [--ros-args ... --] [module:Class [--ros-args ... --] ...]
Run several nodes in one process on one executor (default {DEFAULT_EXECUTOR})."""


def split_options(argv: list[str]) -> tuple[str, list[str]]:
    """The executor named by a leading `--executor NAME` (or `--executor=NAME`) and the rest."""
    if argv[:1] and argv[0].startswith('--executor='):
        name, rest = argv[0].partition('=')[2], argv[1:]
    elif argv[:1] == ['--executor']:
        if len(argv) < 2:
            raise ValueError('--executor needs a name')
        name, rest = argv[1], argv[2:]
    else:
        return DEFAULT_EXECUTOR, argv
    if name not in EXECUTORS:
        raise ValueError(f'unknown executor {name!r} (one of {", ".join(sorted(EXECUTORS))})')
    return name, rest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (['-h'], ['--help']):
        print(USAGE)
        return 0
    try:
        executor, rest = split_options(argv)
        process_args, nodes = parse_nodes(rest)
        classes = [load_class(node.plugin) for node in nodes]
    except ValueError as exc:
        print(f'enpire_cell: cannot start: {exc}\n{USAGE}', file=sys.stderr, flush=True)
        return EXIT_CANNOT_START
    factories = [(node.label, factory(cls, node.ros_args)) for node, cls in zip(nodes, classes, strict=True)]
    return run_nodes(factories, args=['enpire_cell', *process_args], executor=EXECUTORS[executor])


if __name__ == '__main__':
    raise SystemExit(main())
