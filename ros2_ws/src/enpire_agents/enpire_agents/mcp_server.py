"""`enpire mcp`: one experiment's cells and hypothesis tree as a Model Context Protocol server.

    enpire mcp                                   # the default experiment (demo.yaml), stdio, as agent_0
    enpire mcp --experiment my.yaml --agent agent_3 --out runs/my_experiment
    enpire mcp --transport http --port 8765      # streamable HTTP on 127.0.0.1:8765/mcp

Any MCP client (Claude Code, Codex, Cursor, an SDK agent) then calls the tools of
`enpire_agents.cell_tools.CellToolbox` as one agent of the experiment: its own branch of the hypothesis
tree, the experiment's improvement seeds, the experiment's budgets. Every call is logged to
`<out>/tool_calls.jsonl`; the tree is `<out>/hypothesis_tree.git` (reopened when it exists). The tools
are listed even when no cell is up; a call that needs the cell then answers that it is not reachable.
Built on the `mcp` SDK's MCPServer (stdio and streamable HTTP transports).
"""
from __future__ import annotations

import argparse
import functools
import inspect
import ipaddress
import os
import sys
import threading
from pathlib import Path

from enpire_agents.cell_tools import CellToolbox, ToolLedger, ToolResult

LOOPBACK_NAMES = ('localhost',)


def build_server(toolbox: CellToolbox, name: str = 'enpire'):
    """An MCPServer exposing every tool of `toolbox` and the task, contract and policy-tools resources."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name, instructions=toolbox.instructions(), version=_version())
    for tool in toolbox.TOOLS:
        server.add_tool(_as_mcp_tool(getattr(toolbox, tool)), name=tool,
                        description=inspect.getdoc(getattr(toolbox, tool)), structured_output=False)
    texts = resource_texts(toolbox)
    for uri, (title, text) in texts.items():
        register = server.resource(uri, name=uri.rsplit('/', 1)[-1], title=title, mime_type='text/plain')
        register(_constant(text))
    return server


def _constant(text: str):
    def read() -> str:
        return text
    return read


def _as_mcp_tool(method):
    """The toolbox method with MCP content out: text and PNG images; a refusal is an error result."""
    from mcp.server.mcpserver import Image
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(method)
    def tool(**kwargs):
        result: ToolResult = method(**kwargs)
        if not result.ok:
            raise ToolError(result.text)
        return [result.text, *(Image(data=png, format='png') for png in result.images_png)]
    return tool


def resource_texts(toolbox: CellToolbox) -> dict[str, tuple[str, str]]:
    """uri -> (title, text): the task description, the policy contract, the documentation of the policy
    tools the task offers (its `policy_imports`)."""
    import importlib
    import pydoc

    from enpire_common import task_registry

    from enpire_agents.backends.prompting import contract_text, describe_task

    cfg = toolbox.config
    pool = cfg.improvement.seeds
    task = (f'{describe_task(cfg.task)}\n\nExperiment {cfg.name}: cells {", ".join(cfg.cells)}; each rollout '
            f'allows {cfg.attempts} attempts of {cfg.steps_per_attempt} steps; success bar pass@'
            f'{cfg.success_bar.k} >= {cfg.success_bar.pass_at_k} and pass@1 >= {cfg.success_bar.pass_at_1}; '
            f'an idea is usually judged on {cfg.improvement.trials_per_node} rollouts. Improvement seeds: '
            + (f'{pool.start}..{pool.start + pool.count - 1}' if pool.start is not None else str(pool.values))
            + '. Held-out evaluation seeds exist and are run by the experiment only.\n')
    docs = '\n\n'.join(pydoc.render_doc(module, renderer=pydoc.plaintext)
                       for module in map(importlib.import_module,
                                         sorted(task_registry.get(cfg.task).policy_imports)))
    return {'enpire://task': ('Task description', task),
            'enpire://policy/contract': ('Policy contract', contract_text()),
            'enpire://policy/tools': ('Policy tools documentation', docs)}


def _version() -> str:
    try:
        from importlib.metadata import version
        return version('enpire_agents')
    except Exception:  # noqa: BLE001 - not installed as a distribution: the server still runs
        return '0'


def check_loopback(host: str) -> str:
    """The host when it is a loopback address (the server has no authentication); else ValueError."""
    if host in LOOPBACK_NAMES:
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f'--host {host}: the MCP server listens on loopback only (127.0.0.1, ::1, localhost)')


def add_arguments(p: argparse.ArgumentParser) -> None:
    from enpire_agents.experiment import config_dir
    p.add_argument('--experiment', default=str(config_dir() / 'demo.yaml'),
                   help='experiment YAML (default: the package\'s demo.yaml)')
    p.add_argument('--agent', default='agent_0', help='the agent this server acts as (its branch agent/<id>)')
    p.add_argument('--out', default=None, help='the experiment record: tree, policies, tool-call log '
                   '(default runs/mcp_<experiment>)')
    p.add_argument('--transport', choices=('stdio', 'http'), default='stdio')
    p.add_argument('--host', default='127.0.0.1', help='http: a loopback address')
    p.add_argument('--port', type=int, default=8765, help='http: the port (path /mcp)')
    p.add_argument('--trials', type=int, help='override budgets.trials')
    p.add_argument('--robot-time', type=float, help='override budgets.robot_time_s')
    p.add_argument('--wall-clock', type=float, help='override budgets.wall_clock_s')
    p.add_argument('--max-calls', type=int, default=10_000, help='tool calls allowed in all')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from enpire_agents.experiment import ExperimentConfigError, load_experiment
    from enpire_agents.hypothesis_tree import HypothesisTree, empty_policy

    try:
        host = check_loopback(args.host)
        overrides = {key: value for key, value in (('budgets.trials', args.trials),
                                                   ('budgets.robot_time_s', args.robot_time),
                                                   ('budgets.wall_clock_s', args.wall_clock)) if value}
        config = load_experiment(args.experiment, **overrides)
    except (ValueError, ExperimentConfigError) as exc:
        print(f'enpire mcp: {exc}', file=sys.stderr)
        return 2
    out = Path(args.out or f'runs/mcp_{config.name}').resolve()
    out.mkdir(parents=True, exist_ok=True)
    tree_path = out / 'hypothesis_tree.git'
    tree = HypothesisTree.open(tree_path) if (tree_path / 'HEAD').exists() else \
        HypothesisTree.create(tree_path, config.name, empty_policy(config.task))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    graph = _Graph(config, out)
    try:
        ledger = ToolLedger(config.budgets, out / 'tool_calls.jsonl', max_calls=args.max_calls)
        from enpire_agents.bag_evidence import trial_evidence
        toolbox = CellToolbox(args.agent, config, tree, graph.runner, ledger, cell=graph.cell,
                              frames=trial_evidence, backend='mcp')
        server = build_server(toolbox)
        where = 'stdio' if args.transport == 'stdio' else f'http://{host}:{args.port}/mcp'
        print(f'enpire mcp: experiment {config.name} as {args.agent}, record {out}, {where}', file=sys.stderr)
        if args.transport == 'stdio':
            server.run('stdio')
        else:
            server.run('streamable-http', host=host, port=args.port)
    except KeyboardInterrupt:
        pass
    finally:
        graph.close()
    return 0


class _Graph:
    """This server's rclpy node, spun in a thread: the trial runner and the cell's reset and verifier."""

    def __init__(self, config, out: Path):
        import rclpy
        from enpire_common.executors import SubmitOnceExecutor

        from enpire_agents.cell_link import GraphCellControl
        from enpire_agents.team import FleetTrialRunner

        self.context = rclpy.Context()
        rclpy.init(context=self.context, args=['--ros-args', '--disable-stdout-logs'])
        self.node = rclpy.create_node('enpire_mcp', context=self.context)
        self.executor = SubmitOnceExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        self.runner = FleetTrialRunner(self.node, config.cells, out / 'policies', task=config.task,
                                       time_budget_s=config.trial_time_budget_s, record=True)
        self.cell = GraphCellControl(self.node, config.cells)

    def close(self) -> None:
        import rclpy
        self.cell.close()
        self.runner.close()
        self.executor.shutdown()
        self.spinner.join(timeout=5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='enpire mcp', description=__doc__.split('\n\n')[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == '__main__':
    raise SystemExit(main())
