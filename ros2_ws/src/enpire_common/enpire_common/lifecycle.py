"""Managed (lifecycle) nodes of a cell and the client side that brings them up.

The hardware-facing nodes (safety, the command adapter, the camera relay) are `rclpy.lifecycle` nodes:
they publish nothing before `activate`; `deactivate` holds the robot (each node's `hold()`); an error
transition (an exception or ERROR from a transition callback) latches the cell's e-stop
(`names.ESTOP`). Whoever starts them brings them to active: `enpire up` (the supervisor's ready check,
through `bring_up`), the launch files (launch_ros lifecycle events), or the node itself when started with
`-p autostart:=true` (tests, the demo, benches: configure and activate right after start-up, through the
same state machine).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_srvs.srv import SetBool

from enpire_common import names
from enpire_common.parameters import describe

ACTIVE = State.PRIMARY_STATE_ACTIVE
INACTIVE = State.PRIMARY_STATE_INACTIVE
UNCONFIGURED = State.PRIMARY_STATE_UNCONFIGURED


class ManagedCellNode(LifecycleNode):
    """A cell node under the ROS 2 lifecycle; subclasses implement configure/activate/hold/cleanup."""

    def __init__(self, name: str, **node_options):
        super().__init__(name, **node_options)
        self.autostart = bool(self.declare_parameter('autostart', False, describe(
            'configure and activate right after start-up (no lifecycle manager); default: wait for one',
            read_only=True)).value)
        self.active = False
        self._estop_client = self.create_client(SetBool, names.ESTOP)

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read parameters and create what the node needs; a bad setting is a FAILURE with a reason."""
        try:
            self.configure()
        except (ValueError, FileNotFoundError) as exc:
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)       # lifecycle publishers start publishing
        try:
            self.activate()
        except Exception as exc:  # an activation that breaks half-way is an error: on_error stops the cell
            self.get_logger().error(f'activate failed: {exc}')
            return TransitionCallbackReturn.ERROR
        self.active = True
        self.get_logger().info(f'{self.get_name()} active')
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.hold('deactivated')
        self.active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self.hold('shutting down')
        self.active = False
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """An error transition: hold what can be held and latch the cell's e-stop."""
        self.active = False
        super().on_deactivate(state)                  # lifecycle publishers fall silent
        self.get_logger().error(f'error during a transition from {state.label}: latching the e-stop')
        self.latch_estop(f'{self.get_fully_qualified_name()}: lifecycle error from {state.label}')
        return TransitionCallbackReturn.SUCCESS      # back to unconfigured; the e-stop stays latched

    # ------------------------------------------------------------------ for subclasses
    def configure(self) -> None:
        """Read parameters, create publishers (`create_lifecycle_publisher`), subscriptions, timers."""

    def activate(self) -> None:
        """Anything beyond enabling the lifecycle publishers (e.g. check the controller is there)."""

    def hold(self, why: str) -> None:
        """Keep the robot where it is (deactivate, shutdown)."""

    def cleanup(self) -> None:
        """Undo configure."""

    def latch_estop(self, reason: str) -> None:
        """Ask the cell's safety node to latch its e-stop (asynchronously; the safety node overrides)."""
        if not self._estop_client.service_is_ready():
            self.get_logger().error(f'e-stop service {self._estop_client.srv_name} not available: {reason}')
        self._estop_client.call_async(SetBool.Request(data=True))


def bring_up(node, target: str, wait: Callable, timeout_s: float = 10.0) -> int:
    """Configure and activate the lifecycle node `target` (fully qualified name) from client `node`.

    `wait(future, timeout_s)` returns the future's result once done (spin it, or wait on a spun executor).
    Returns the primary state id reached (ACTIVE on success); raises TimeoutError when the node's
    lifecycle services do not answer.
    """
    get_state = node.create_client(GetState, f'{target}/get_state')
    change = node.create_client(ChangeState, f'{target}/change_state')
    try:
        deadline = time.monotonic() + timeout_s
        if not get_state.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f'{target}: no lifecycle services after {timeout_s:.0f} s')
        state = wait(get_state.call_async(GetState.Request()), max(0.1, deadline - time.monotonic()))
        current = state.current_state.id
        for from_state, transition in ((UNCONFIGURED, Transition.TRANSITION_CONFIGURE),
                                       (INACTIVE, Transition.TRANSITION_ACTIVATE)):
            if current != from_state:
                continue
            if not change.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic())):
                raise TimeoutError(f'{target}: no change_state service')
            request = ChangeState.Request(transition=Transition(id=transition))
            wait(change.call_async(request), max(0.1, deadline - time.monotonic()))
            reply = wait(get_state.call_async(GetState.Request()), max(0.1, deadline - time.monotonic()))
            current = reply.current_state.id
        return current
    finally:
        node.destroy_client(get_state)
        node.destroy_client(change)
