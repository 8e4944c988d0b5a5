"""A node process for the run_node tests: `python node_main_child.py <mode>` (see test_node_main.py)."""
import sys

from enpire_common.lifecycle import ManagedCellNode
from enpire_common.node_main import run_node
from rclpy.node import Node


class Plain(Node):
    def __init__(self):
        super().__init__('node_main_child')
        self.create_timer(0.05, self._once)
        self._said = False

    def _once(self):
        if not self._said:
            print('spinning', flush=True)
            self._said = True

    def destroy_node(self):
        print('destroyed', flush=True)
        return super().destroy_node()


class BadStartup(Node):
    def __init__(self):
        raise FileNotFoundError('/nowhere/limits.yaml does not exist')


class BadConfigure(ManagedCellNode):
    def __init__(self):
        super().__init__('node_main_managed')

    def configure(self):
        raise ValueError('max_speed must be positive')


def _ends_with_three(node, executor):
    executor.spin_once(timeout_sec=0.1)
    return 3


def _context_gone_under_the_wait_set(node, executor):
    """What a signal does between the executor's check of the context and its wait set (rclpy's signal
    thread shuts the context down): rcl refuses the wait set."""
    import rclpy
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

    rclpy.shutdown()
    raise _rclpy.RCLError('failed to initialize wait set: the given context is not valid')


def _rcl_error_while_running(node, executor):
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

    raise _rclpy.RCLError('a real rcl failure')


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'plain':
        sys.exit(run_node(Plain))
    if mode == 'bad_startup':
        sys.exit(run_node(BadStartup, name='child'))
    if mode == 'bad_autostart':
        sys.exit(run_node(BadConfigure, args=['--ros-args', '-p', 'autostart:=true']))
    if mode == 'own_spin':
        sys.exit(run_node(Plain, spin=_ends_with_three))
    if mode == 'signal_race':
        sys.exit(run_node(Plain, spin=_context_gone_under_the_wait_set))
    if mode == 'rcl_error':
        sys.exit(run_node(Plain, spin=_rcl_error_while_running))
