"""`enpire` command: replay / audit / up / demo / perception / bench / calibrate / mcp / view.

It lives in enpire_bringup, the package that depends on every other one, so each subcommand imports its
module directly (add yours to SUBCOMMANDS)."""
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
    p.add_argument('--no-cross-check', action='store_true',
                   help="with --replay: skip the cross-check against the task's reference simulator")
    p.add_argument('--video-dir', default=None, help='write one mp4 per camera here (default: in each bag)')
    p.add_argument('--no-video', action='store_true')

    def run(args):
        if args.replay:
            from enpire_rollout.audit_replay import main_replay
            return main_replay(args.path, reference_check=not args.no_cross_check)
        from enpire_rollout.audit import main_audit
        return main_audit(args.path, video_dir=args.video_dir, video=not args.no_video)
    p.set_defaults(func=run)


def _up(sub):
    from enpire_bringup import up
    p = sub.add_parser('up', help='start a bringup (nodes of N cells) without ros2 launch, supervised')
    up.add_arguments(p)
    p.set_defaults(func=up.run)


def _bench(sub):
    from enpire_agents.benchmark import cli as bench
    bench.add_arguments(sub.add_parser(
        'bench', help='research-progress benchmark: tasks x backends x team sizes x repeats'))


def _perception(sub):
    p = sub.add_parser('perception', help='train / evaluate the YOLO detector of the verifier (CPU, offline)')
    from enpire_env.perception.train import add_arguments
    add_arguments(p)


def _calibrate(sub):
    from enpire_bringup import calibrate
    calibrate.add_arguments(sub.add_parser(
        'calibrate', help="a camera's intrinsics and table pose from a ChArUco board",
        description='Intrinsics (CameraInfo) and the camera-to-table pose (/tf_static) from a ChArUco board '
        'seen in a folder of images or on a camera topic; writes one YAML per camera in the ROS camera_info '
        'conventions, which the real-cell bringup loads.'))


def _mcp(sub):
    from enpire_agents import mcp_server
    mcp_server.add_arguments(sub.add_parser(
        'mcp', help="serve an experiment's cells and hypothesis tree to MCP clients (coding agents)"))


def _view(sub):
    from enpire_bringup import live_view
    live_view.add_arguments(sub.add_parser(
        'view', help='serve a running cell to Foxglove (WebSocket, loopback by default)',
        description='Serves the cameras, CameraInfo, /tf_static, cell state, verdicts, trial and safety '
        'events of running cells to Foxglove over its WebSocket protocol, with the standard ROS 2 schemas.'))


SUBCOMMANDS = [_replay, _audit, _up, _perception, _bench, _calibrate, _mcp, _view]


def version() -> str:
    """This package's version, from its installed package.xml (the source tree's before a build)."""
    import xml.etree.ElementTree as ElementTree
    from pathlib import Path

    manifest = Path(__file__).resolve().parents[1] / 'package.xml'
    try:
        from ament_index_python.packages import get_package_share_directory
        manifest = Path(get_package_share_directory('enpire_bringup')) / 'package.xml'
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
