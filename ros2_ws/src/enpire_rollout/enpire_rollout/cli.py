"""`enpire` command: replay / audit / up / perception / bench / calibrate / mcp (add yours to SUBCOMMANDS)."""
from __future__ import annotations

import argparse
import sys


def _replay(sub):
    p = sub.add_parser('replay', help='republish a trial bag on the graph (never its commands unless asked)')
    p.add_argument('bag')
    p.add_argument('--rate', type=float, default=1.0, help='playback rate (0: as fast as possible)')
    p.add_argument('--topics', nargs='*', default=None)
    p.add_argument('--publish-commands', action='store_true',
                   help='also publish the recorded commands (cmd/target, cmd/policy_target): '
                        'this drives a live cell')
    p.add_argument('--clock', action='store_true',
                   help='publish the bag time on /clock (for nodes with use_sim_time)')
    p.add_argument('--remap', action='append', default=[], metavar='FROM:=TO',
                   help='publish a recorded topic under another name; repeatable')
    p.add_argument('--prefix', default='', help="publish every topic under this namespace, e.g. '/replay'")

    def run(args):
        from enpire_rollout.replay import ReplayError, replay
        try:
            print(replay(args.bag, rate=args.rate, topics=args.topics, publish_commands=args.publish_commands,
                         clock=args.clock, remaps=args.remap, prefix=args.prefix))
        except ReplayError as exc:
            print(f'enpire replay: {exc}', file=sys.stderr)
            return 2
        return 0
    p.set_defaults(func=run)


def _audit(sub):
    p = sub.add_parser('audit', help='re-verify recorded frames against recorded verdicts; --replay: re-run '
                                     'a simulated trial from its bag and re-judge it by the task\'s rule')
    p.add_argument('path', help='a trial bag or a folder of bags (searched recursively with --replay)')
    p.add_argument('--replay', action='store_true',
                   help='simulated cells: rebuild the initial state, re-run the recorded commands, compare '
                        'the states, re-judge every verdict (non-zero exit on a false success or a mismatch)')
    p.add_argument('--no-gym-pusht', action='store_true',
                   help='with --replay: skip the gym-pusht cross-check')
    p.add_argument('--video-dir', default=None, help='write one mp4 per camera here (default: in each bag)')
    p.add_argument('--no-video', action='store_true')

    def run(args):
        if args.replay:
            from enpire_rollout.audit_replay import main_replay
            return main_replay(args.path, gym_check=not args.no_gym_pusht)
        from enpire_rollout.audit import main_audit
        return main_audit(args.path, video_dir=args.video_dir, video=not args.no_video)
    p.set_defaults(func=run)


def _up(sub):
    p = sub.add_parser('up', help='start a bringup (nodes of N cells) without ros2 launch, supervised')
    # enpire_bringup depends on this package (it starts the trial servers), so it is looked up at run
    # time rather than declared: `enpire up` is there when enpire_bringup is installed.
    import importlib
    try:
        up = importlib.import_module('enpire_bringup.up')
    except ImportError:
        p.set_defaults(func=lambda args: sys.exit('enpire up: the enpire_bringup package is not installed'))
        return
    up.add_arguments(p)
    p.set_defaults(func=up.run)


def _bench(sub):
    p = sub.add_parser('bench', help='research-progress benchmark: tasks x backends x team sizes x repeats')
    # The benchmark drives agent teams, and enpire_agents depends on this package: looked up at run time.
    import importlib
    try:
        bench = importlib.import_module('enpire_agents.benchmark.cli')
    except ImportError:
        p.set_defaults(func=lambda args: sys.exit('enpire bench: the enpire_agents package is not installed'))
        return
    bench.add_arguments(p)


def _perception(sub):
    p = sub.add_parser('perception', help='train / evaluate the YOLO detector of the verifier (CPU, offline)')
    from enpire_env.perception.train import add_arguments
    add_arguments(p)


def _from_bringup(p, module: str) -> None:
    """Arguments and run function of a subcommand living in enpire_bringup, which depends on this
    package: looked up at run time, like `up`."""
    import importlib
    try:
        importlib.import_module(module).add_arguments(p)
    except ImportError:
        p.set_defaults(func=lambda args: sys.exit(f'{p.prog}: the enpire_bringup package is not installed'))


def _calibrate(sub):
    _from_bringup(sub.add_parser(
        'calibrate', help="a camera's intrinsics and table pose from a ChArUco board",
        description='Intrinsics (CameraInfo) and the camera-to-table pose (/tf_static) from a ChArUco board '
        'seen in a folder of images or on a camera topic; writes one YAML per camera in the ROS camera_info '
        'conventions, which the real-cell bringup loads.'), 'enpire_bringup.calibrate')


def _mcp(sub):
    p = sub.add_parser('mcp', help="serve an experiment's cells and hypothesis tree to MCP clients "
                       '(coding agents)')
    import importlib  # enpire_agents depends on this package: looked up at run time, like bench
    try:
        importlib.import_module('enpire_agents.mcp_server').add_arguments(p)
    except ImportError:
        p.set_defaults(func=lambda args: sys.exit('enpire mcp: the enpire_agents package is not installed'))


def _view(sub):
    _from_bringup(sub.add_parser(
        'view', help='serve a running cell to Foxglove (WebSocket, loopback by default)',
        description='Serves the cameras, CameraInfo, /tf_static, cell state, verdicts, trial and safety '
        'events of running cells to Foxglove over its WebSocket protocol, with the standard ROS 2 schemas.'),
        'enpire_bringup.live_view')


SUBCOMMANDS = [_replay, _audit, _up, _perception, _bench, _calibrate, _mcp, _view]


def version() -> str:
    """This package's version, from its installed package.xml (the source tree's before a build)."""
    import xml.etree.ElementTree as ElementTree
    from pathlib import Path

    manifest = Path(__file__).resolve().parents[1] / 'package.xml'
    try:
        from ament_index_python.packages import get_package_share_directory
        manifest = Path(get_package_share_directory('enpire_rollout')) / 'package.xml'
    except Exception:  # not installed: the source tree's manifest
        pass
    return ElementTree.parse(manifest).getroot().findtext('version', 'unknown')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='enpire')
    parser.add_argument('--version', action='version', version=f'enpire {version()}')
    sub = parser.add_subparsers(dest='command', required=True)
    for add in SUBCOMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
