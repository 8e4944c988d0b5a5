"""`enpire up <bringup.yaml> [--cells N] [--log-dir DIR]`: start a bringup without `ros2 launch`.

Reads the same bringup file as the launch files (enpire_common.bringup_file), starts every node as
`python -m <module> --ros-args ...` (a composed cell's nodes as one `enpire_common.composition` process)
under the supervisor (enpire_common.supervisor), waits for ready checks (log patterns; topics, services
and actions through a small rclpy graph probe), brings managed nodes (`lifecycle: true`) to active
through their lifecycle services as a lifecycle manager does, forwards SIGINT/SIGTERM and returns when
everything has stopped (enpire_common.cells has the probe; the demo and the benchmark start their cells
the same way). Discovery stays on loopback unless the caller's
environment says otherwise (ROS_AUTOMATIC_DISCOVERY_RANGE defaults to LOCALHOST here).

    enpire up sim_cells --cells 2                 # a file of config/bringup by name, or any path
    enpire up sim_cells --task peg_insertion      # the cells run another task than the file's
    enpire up real_cell.yaml --skip 'cell_*.agents' --log-dir runs/bringup/today
    enpire up sim_cells --print                   # show the commands, start nothing
    enpire up sim_cells --separate                # a composed cell's nodes each in its own process
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from enpire_common import bringup_file
from enpire_common.cells import GraphProbe, process_specs
from enpire_common.supervisor import Supervisor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bringup', help='bringup YAML: a path, or a name of enpire_bringup/config/bringup')
    parser.add_argument('--cells', type=int, default=None, help='number of cells (default: the file\'s)')
    parser.add_argument('--task', default=None,
                        help="the task the cells run (${task} in the file; default: the file's `task`)")
    parser.add_argument('--log-dir', default=None,
                        help='per-node logs (default: runs/bringup/<name>-<time> under $ENPIRE_ROOT or .)')
    parser.add_argument('--only', action='append', default=[], metavar='GLOB',
                        help='start only nodes whose label (cell_0.sim) or name (sim) matches; repeatable')
    parser.add_argument('--skip', action='append', default=[], metavar='GLOB',
                        help='do not start matching nodes; repeatable')
    parser.add_argument('--ready-timeout', type=float, default=None, help='seconds, overrides the file')
    parser.add_argument('--grace', type=float, default=None,
                        help='seconds between the forwarded signal and SIGKILL (default: the file\'s)')
    parser.add_argument('--separate', action='store_true',
                        help='start every node as its own process, also those of a composed cell')
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
        expansion = bringup_file.expand(bringup, cells=args.cells, task=args.task)
        expansion = expansion.select(args.only, args.skip)
    except (FileNotFoundError, ValueError, KeyError, LookupError) as exc:
        print(f'enpire up: {exc}', file=sys.stderr)
        return 2
    missing = bringup_file.missing_files(expansion)
    compose = False if args.separate else None
    if args.print_only:
        for process in expansion.processes(compose):
            env = ' '.join(f'{k}={shlex.quote(v)}' for k, v in process.env.items())
            print(f'{process.label}: {env + " " if env else ""}{shlex.join(process.argv(sys.executable))}')
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
    specs = process_specs(expansion, probe, ready_timeout_s=args.ready_timeout, compose=compose)
    grace = args.grace if args.grace is not None else bringup.defaults.shutdown_grace_s
    supervisor = Supervisor(specs, log_dir, grace_s=grace, echo=not args.quiet)
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, lambda s, _f: supervisor.request_shutdown(s))
    print(f'[enpire up] {bringup.name}: {len(expansion.cells)} cells '
          f'({", ".join(expansion.cells) or "none"}), {len(expansion.nodes)} nodes in {len(specs)} '
          f'processes, ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID", "0")}, discovery '
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
