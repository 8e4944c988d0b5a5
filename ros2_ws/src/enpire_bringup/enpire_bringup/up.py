"""`enpire up <bringup.yaml> [--cells N] [--log-dir DIR]`: start a bringup without `ros2 launch`.

Reads the same bringup file as the launch files (bringup_file.py), starts every node as
`python -m <module> --ros-args ...` under the Supervisor, waits for ready checks (log patterns here;
topics, services and actions through a small rclpy graph probe), brings managed nodes (`lifecycle: true`)
to active through their lifecycle services as a lifecycle manager does, forwards SIGINT/SIGTERM and
returns when everything has stopped. Discovery stays on loopback unless the caller's environment says
otherwise (ROS_AUTOMATIC_DISCOVERY_RANGE defaults to LOCALHOST here).

    enpire up sim_cells --cells 2                 # a file of config/bringup by name, or any path
    enpire up real_cell.yaml --skip 'cell_*.agents' --log-dir runs/bringup/today
    enpire up sim_cells --print                   # show the commands, start nothing
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from enpire_bringup import bringup_file
from enpire_bringup.supervisor import ProcessSpec, Restart, Supervisor


class GraphProbe:
    """Answers 'is this topic published / service or action served yet' with a private rclpy node."""

    def __init__(self):
        self._node = None
        self._context = None

    def _ensure(self):
        if self._node is None:
            import rclpy
            import rclpy.executors
            from rclpy.signals import SignalHandlerOptions

            self._context = rclpy.Context()
            rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
            self._node = rclpy.create_node('enpire_up_probe', context=self._context,
                                           start_parameter_services=False, enable_rosout=False)
            self._executor = rclpy.executors.SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self._node)
        return self._node

    def topic(self, name: str) -> bool:
        return self._ensure().count_publishers(name) > 0

    def service(self, name: str) -> bool:
        return any(n == name for n, _ in self._ensure().get_service_names_and_types())

    def activate(self, fully_qualified_name: str) -> bool:
        """Configure and activate a managed node (lifecycle services); True once it is active."""
        from enpire_common.lifecycle import ACTIVE, bring_up

        node = self._ensure()

        def wait(future, timeout_s):
            self._executor.spin_until_future_complete(future, timeout_sec=timeout_s)
            if not future.done():
                raise TimeoutError(f'{fully_qualified_name}: no answer from its lifecycle services')
            return future.result()
        try:
            return bring_up(node, fully_qualified_name, wait, timeout_s=5.0) == ACTIVE
        except TimeoutError:
            return False

    def action(self, name: str) -> bool:
        return self.service(f'{name}/_action/send_goal') and self.service(f'{name}/_action/get_result')

    def close(self):
        if self._node is not None:
            import rclpy

            self._executor.shutdown()
            self._node.destroy_node()
            rclpy.try_shutdown(context=self._context)
            self._node = None


def process_specs(expansion: bringup_file.Expansion, probe: GraphProbe | None = None,
                  python: str = sys.executable, ready_timeout_s: float | None = None) -> list[ProcessSpec]:
    """The supervisor's view of an expansion (graph ready checks go through `probe`)."""
    specs = []
    for node in expansion.nodes:
        ready = node.ready
        hook = None
        if (node.ready_names or node.lifecycle) and probe is not None:
            checks = [(getattr(probe, kind), name) for kind, name in node.ready_names.items()]
            if node.lifecycle:   # the lifecycle manager's part: ready means configured and active
                checks.insert(0, (probe.activate, node.fully_qualified_name))
            hook = (lambda checks=checks: all(check(name) for check, name in checks))
        restart = Restart(**node.restart.model_dump())
        timeout = ready_timeout_s or (ready.timeout_s if ready else 60.0)
        specs.append(ProcessSpec(
            label=node.label, argv=node.argv(python), env=node.env, restart=restart,
            ready_log=ready.log if ready else None, ready_delay_s=ready.delay_s if ready else 0.0,
            ready_hook=hook, ready_timeout_s=timeout, after=node.after, required=node.required))
    return specs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bringup', help='bringup YAML: a path, or a name of enpire_bringup/config/bringup')
    parser.add_argument('--cells', type=int, default=None, help='number of cells (default: the file\'s)')
    parser.add_argument('--log-dir', default=None,
                        help='per-node logs (default: runs/bringup/<name>-<time> under $ENPIRE_ROOT or .)')
    parser.add_argument('--only', action='append', default=[], metavar='GLOB',
                        help='start only nodes whose label (cell_0.sim) or name (sim) matches; repeatable')
    parser.add_argument('--skip', action='append', default=[], metavar='GLOB',
                        help='do not start matching nodes; repeatable')
    parser.add_argument('--ready-timeout', type=float, default=None, help='seconds, overrides the file')
    parser.add_argument('--grace', type=float, default=None,
                        help='seconds between the forwarded signal and SIGKILL (default: the file\'s)')
    parser.add_argument('--quiet', action='store_true', help='do not echo node output (logs are kept)')
    parser.add_argument('--print', dest='print_only', action='store_true',
                        help='print the expanded commands and exit')


def default_log_dir(name: str) -> Path:
    root = Path(os.environ.get('ENPIRE_ROOT', '.'))
    return root / 'runs' / 'bringup' / f'{name}-{time.strftime("%Y%m%d-%H%M%S")}'


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    try:
        bringup = bringup_file.load(args.bringup)
        expansion = bringup_file.expand(bringup, cells=args.cells).select(args.only, args.skip)
    except (FileNotFoundError, ValueError, KeyError, LookupError) as exc:
        print(f'enpire up: {exc}', file=sys.stderr)
        return 2
    missing = bringup_file.missing_files(expansion)
    if args.print_only:
        for node in expansion.nodes:
            env = ' '.join(f'{k}={shlex.quote(v)}' for k, v in node.env.items())
            print(f'{node.label}: {env + " " if env else ""}{shlex.join(node.argv(sys.executable))}')
        for line in missing:
            print(f'missing parameter file: {line}', file=sys.stderr)
        return 0
    if missing:
        print('enpire up: missing parameter files:\n  ' + '\n  '.join(missing), file=sys.stderr)
        return 2
    if not expansion.nodes:
        print('enpire up: nothing to start', file=sys.stderr)
        return 2

    log_dir = Path(args.log_dir) if args.log_dir else default_log_dir(bringup.name)
    probe = GraphProbe() if any(n.ready_names or n.lifecycle for n in expansion.nodes) else None
    specs = process_specs(expansion, probe, ready_timeout_s=args.ready_timeout)
    grace = args.grace if args.grace is not None else bringup.defaults.shutdown_grace_s
    supervisor = Supervisor(specs, log_dir, grace_s=grace, echo=not args.quiet)
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, lambda s, _f: supervisor.request_shutdown(s))
    print(f'[enpire up] {bringup.name}: {len(expansion.cells)} cells '
          f'({", ".join(expansion.cells) or "none"}), {len(specs)} nodes, ROS_DOMAIN_ID='
          f'{os.environ.get("ROS_DOMAIN_ID", "0")}, discovery '
          f'{os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"]}', flush=True)
    try:
        return supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if probe is not None:
            probe.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='enpire up', description=__doc__.split('\n')[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
