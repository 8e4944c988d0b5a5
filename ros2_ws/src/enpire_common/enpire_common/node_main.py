"""One `main()` for every node: init, build the node, spin it, shut down cleanly, an exit code.

    def main(args=None) -> int:
        return run_node(VerifyNode, args=args)

rclpy's own signal handlers turn SIGINT and SIGTERM into a shutdown of the context (the spin ends with
ExternalShutdownException or KeyboardInterrupt): both are a clean stop, exit 0. A node that cannot be
built from its parameters or files (`FileNotFoundError`, `ValueError`, a parameter of the wrong type, bad
`--ros-args`: a missing calibration, a bad backend choice) logs why once and exits 2, never falling back
to something else. A managed node started with `-p autostart:=true` is configured and activated before
it spins (exit 2 when that fails). `run_nodes` does the same for several nodes in one process on one
executor (enpire_common.composition: a cell in one process), whose sim-time nodes share one clock
subscription per clock topic (enpire_common.shared_clock) and whose publishers and subscriptions keep no
default QoS-event handler (`drop_default_event_handlers`): both shrink what every wake-up costs.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import rclpy
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node

from enpire_common.executors import SubmitOnceExecutor, drop_default_event_handlers
from enpire_common.lifecycle import ManagedCellNode
from enpire_common.shared_clock import share_clock_subscriptions

STARTUP_ERRORS = (FileNotFoundError, ValueError, ParameterException, NameValidationException,
                  _rclpy.RCLInvalidROSArgsError)
EXIT_OK, EXIT_CANNOT_START = 0, 2


def run_node(make_node: Callable[[], Node], *, args: list[str] | None = None, name: str | None = None,
             executor: Callable[[], Executor] = SubmitOnceExecutor,
             spin: Callable[[Node, Executor], int | None] | None = None) -> int:
    """Run one node in this process until it ends or is signalled; returns the process exit code.

    `executor` builds the executor (the SubmitOnceExecutor unless the node wants another);
    `spin(node, executor)` replaces `executor.spin()` for a node that ends on its own (its return value is
    the exit code)."""
    label = name or getattr(make_node, '__name__', 'node')
    return run_nodes([(label, make_node)], args=args, executor=executor,
                     spin=None if spin is None else (lambda nodes, spinner: spin(nodes[0], spinner)))


def run_nodes(factories: Sequence[tuple[str, Callable[[], Node]]], *, args: list[str] | None = None,
              executor: Callable[[], Executor] = SubmitOnceExecutor,
              spin: Callable[[list[Node], Executor], int | None] | None = None) -> int:
    """Build every node (label, factory) in order in one context, autostart the managed ones, spin them
    all on one executor; a node that cannot start stops the process with exit 2 and its reason."""
    try:
        with rclpy.init(args=args):
            nodes: list[Node] = []
            spinner = None
            try:
                for label, make_node in factories:
                    try:
                        nodes.append(make_node())
                    except STARTUP_ERRORS as exc:
                        if not rclpy.ok():
                            return EXIT_OK       # signalled while it started: a clean stop
                        rclpy.logging.get_logger(label).fatal(f'cannot start: {exc}')
                        return EXIT_CANNOT_START
                if len(nodes) > 1:
                    share_clock_subscriptions(nodes)    # one clock take per tick, not one per node
                spinner = executor()
                if not all(_autostart(node) for node in nodes):
                    # a SIGINT/SIGTERM during a managed node's configure/activate is a stop, not a fault
                    return EXIT_CANNOT_START if rclpy.ok() else EXIT_OK
                if len(nodes) > 1:
                    drop_default_event_handlers(nodes)   # a smaller wait set for every wake-up of the cell
                for node in nodes:
                    spinner.add_node(node)
                try:
                    if spin is not None:
                        return int(spin(nodes, spinner) or EXIT_OK)
                    spinner.spin()
                except _rclpy.RCLError:
                    if rclpy.ok():
                        raise
                    # rclpy's signal thread shut the context down while the executor built its wait set
                    # (rcl: "the given context is not valid"): the signal's clean stop, as below
            finally:
                if spinner is not None:
                    spinner.shutdown()
                for node in reversed(nodes):
                    node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return EXIT_OK


def _autostart(node: Node) -> bool:
    """Configure and activate a managed node started with autostart:=true; False when a step fails."""
    if not isinstance(node, ManagedCellNode) or not node.autostart:
        return True
    for step in (node.trigger_configure, node.trigger_activate):
        if step() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().fatal(f'autostart: {step.__name__} failed (see the error above)')
            return False
    return True
