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


# A transition: the primary state it starts from and the one it leads to on success.
TRANSITIONS = {
    Transition.TRANSITION_CONFIGURE: (UNCONFIGURED, INACTIVE),
    Transition.TRANSITION_ACTIVATE: (INACTIVE, ACTIVE),
    Transition.TRANSITION_DEACTIVATE: (ACTIVE, INACTIVE),
    Transition.TRANSITION_CLEANUP: (INACTIVE, UNCONFIGURED),
}
_IN_TRANSITION = range(State.TRANSITION_STATE_CONFIGURING, State.TRANSITION_STATE_ERRORPROCESSING + 1)


class LifecycleClient:
    """The lifecycle services of the managed node `target` (fully qualified name) from client `node`.

    `wait(future, timeout_s)` returns the future's result once done and raises TimeoutError otherwise (spin
    it, or wait on a spun executor). A request that reaches the node before its reply writer has matched
    this client's reader loses its answer (a DDS discovery race, likeliest right after start-up on a busy
    machine), so a question (get_state) is asked again after `resend_s` of silence, and a transition's
    outcome is read from the node's state, never from its answer alone: a transition whose answer was
    lost while the node still is where it started is requested again (a repeat of one the node already
    made is refused as invalid, harmlessly).
    """

    def __init__(self, node, target: str, wait: Callable, resend_s: float = 2.0):
        self.node, self.target, self._wait, self.resend_s = node, target, wait, resend_s
        self._get = node.create_client(GetState, f'{target}/get_state')
        self._change = node.create_client(ChangeState, f'{target}/change_state')

    def close(self) -> None:
        self.node.destroy_client(self._get)
        self.node.destroy_client(self._change)

    def _ask(self, client, request, deadline: float, once: bool = False):
        """The answer to `request`, asked again after `resend_s` of silence until `deadline` (TimeoutError);
        `once`: asked once, None when no answer came within `resend_s`."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f'{self.target}: no answer from {client.srv_name}')
            future = client.call_async(request)
            try:
                return self._wait(future, min(self.resend_s, remaining))
            except TimeoutError:
                client.remove_pending_request(future)
                if once:
                    return None

    def _ready(self, deadline: float) -> None:
        for client in (self._get, self._change):
            if not client.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic())):
                raise TimeoutError(f'{self.target}: no lifecycle services ({client.srv_name}) after waiting')

    def state(self, timeout_s: float = 10.0) -> int:
        """The node's current state id (primary, or a transition state while one runs)."""
        deadline = time.monotonic() + timeout_s
        self._ready(deadline)
        return self._ask(self._get, GetState.Request(), deadline).current_state.id

    def change(self, transition: int, timeout_s: float = 10.0) -> int:
        """Make `transition` (a lifecycle_msgs Transition id of TRANSITIONS) if the node is in the state it
        starts from; returns the primary state reached (the transition's goal when it succeeded, where it
        was when it failed, UNCONFIGURED after an error). TimeoutError when the node does not answer."""
        deadline = time.monotonic() + timeout_s
        self._ready(deadline)
        start, _goal = TRANSITIONS[transition]
        request = ChangeState.Request(transition=Transition(id=transition))
        answered = False
        while True:
            current = self._ask(self._get, GetState.Request(), deadline).current_state.id
            if current in _IN_TRANSITION:
                time.sleep(0.05)
                continue
            if current != start or answered:       # made, or tried and refused/failed with an answer
                return current
            answered = self._ask(self._change, request, deadline, once=True) is not None


def bring_up(node, target: str, wait: Callable, timeout_s: float = 10.0) -> int:
    """Configure and activate the lifecycle node `target` (fully qualified name) from client `node`.

    `wait(future, timeout_s)` as for LifecycleClient. Returns the primary state id reached (ACTIVE on
    success); raises TimeoutError when the node's lifecycle services do not answer.
    """
    client = LifecycleClient(node, target, wait)
    try:
        deadline = time.monotonic() + timeout_s
        current = client.state(timeout_s)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            if current == TRANSITIONS[transition][0]:
                current = client.change(transition, max(0.1, deadline - time.monotonic()))
        return current
    finally:
        client.close()
