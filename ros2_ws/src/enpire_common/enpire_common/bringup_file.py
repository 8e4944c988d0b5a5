"""The bringup file: the one description of what runs (nodes, namespaces, parameters, remaps, env, restarts).

`enpire up` (supervisor, no `ros2 launch` needed) and the launch files in `launch/` (for `ros2 launch`
on lab machines) both read it through this module, so the two never drift apart. Pure: no rclpy.

    name: sim_cells
    task: stack_cubes                                  # the task the cells run: ${task} (`enpire up --task`)
    env: {ROS_AUTOMATIC_DISCOVERY_RANGE: LOCALHOST}     # for every process (the caller's env wins, see up.py)
    defaults: {restart: {policy: on_failure}}          # any node field, applied where a node leaves it unset
    cells:                                             # a template, expanded once per cell
      count: 2
      namespace: cell_${index}
      compose: true                                    # the cell's components in ONE process (below)
      nodes:
        - name: sim
          module: enpire_sim.sim_cell_node             # alone: `python -m <module> --ros-args ...`
          component: SimCellNode                       # composed: the class (`module:Class` or in `module`)
          params_files: [${share:enpire_sim}/config/sim_cell.yaml]
          parameters: {task: '${task}', pacing: as_fast, seed: ${index}}
          remaps: {cmd/target: cmd/target}
          ready: {topic: cell_state}
        - name: safety
          module: enpire_env.safety_node
          after: [sim]                                 # start once `sim` is ready
          lifecycle: true                              # managed: configured and activated when started
    nodes:                                             # global nodes, started once
      - name: agents
        module: enpire_agents.agent_node
        namespace: /
        parameters: {cells: ${cells}}

A composed cell (`compose: true`, or `compose: {executor: inline}`) runs every node of the cell that names
a `component` in one process (enpire_common.composition: one context, one executor, one DDS participant),
labelled with the cell's name (its log `<cell>.log`); each node keeps its own ROS arguments. `after`
between them is moot (all are built before the executor spins); the process is ready once every node's
ready check holds (managed nodes activated); a restart restarts the whole cell. Nodes without a component
run alone beside it. `processes()` turns the nodes into what is started; `compose=False` starts every
node alone (`enpire up --separate`, the launch argument `compose:=false`).

Substitutions in every string: `${index}` (cell index), `${cell}` (cell namespace without '/'),
`${count}`, `${cells}` (list of cell names), `${task}` (the file's `task`, or the one `expand` is given:
every node that serves a task names it, so nothing started from a bringup depends on which tasks are
installed), `${share:<pkg>}` (installed share directory of a package),
`${here}` (directory of the bringup file), `${env:VAR}` / `${env:VAR:-default}`. A string that is
exactly one of `${index}`, `${count}`, `${cells}` becomes an int / list, so parameters keep their types.
"""
from __future__ import annotations

import copy
import fnmatch
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PACKAGE = 'enpire_bringup'   # where the bringup files live (config/bringup)
COMPOSITION_MODULE = 'enpire_common.composition'   # the container of a composed cell
_SOURCE_TREE = Path(__file__).resolve().parents[2] / PACKAGE   # before a build
_TOKEN = re.compile(r'\$\{([^{}]+)\}')   # innermost first: ${env:X:-${share:p}/f} works


class RestartPolicy(BaseModel):
    """When a node exits: `never` restart it, restart `on_failure` (non-zero exit or signal), or `always`."""
    model_config = ConfigDict(extra='forbid')

    policy: Literal['never', 'on_failure', 'always'] = 'never'
    max_restarts: int = Field(5, ge=0)       # in a row; the count resets once a run lasted stable_s
    backoff_s: float = Field(0.5, ge=0)      # delay before the first restart
    backoff_factor: float = Field(2.0, ge=1)
    backoff_max_s: float = Field(30.0, ge=0)
    stable_s: float = Field(30.0, ge=0)

    def delay(self, restarts_so_far: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * self.backoff_factor ** restarts_so_far)


class ReadyCheck(BaseModel):
    """When a started node counts as ready (for `after` and for `enpire up`'s 'all ready').

    `log`: a regular expression seen in its output. `topic`/`service`/`action`: that name appears on the
    graph (relative names resolve in the node's namespace; checked by up.py with rclpy). `delay_s`: a
    fixed wait after the start. With none of them, a node is ready as soon as it started.
    """
    model_config = ConfigDict(extra='forbid')

    log: str | None = None
    topic: str | None = None
    service: str | None = None
    action: str | None = None
    delay_s: float = Field(0.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)


class NodeSpec(BaseModel):
    """One process. Exactly one of `module` (python -m), `package`+`executable` (ros2 run style), `cmd`."""
    model_config = ConfigDict(extra='forbid')

    name: str                                   # node label within its cell (also the log file name)
    module: str | None = None
    component: str | None = None                # node class for a composed cell: 'module:Class' or 'Class'
    package: str | None = None
    executable: str | None = None
    cmd: list[str] | None = None                # raw argv; `ros_args` still appended unless ros_args: false
    node_name: str | None = None                # remaps __node when set
    namespace: str | None = None                # default: the cell's namespace, '/' for global nodes
    params_files: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    remaps: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    ros_args: bool = True
    restart: RestartPolicy | None = None
    ready: ReadyCheck | None = None
    after: list[str] = Field(default_factory=list)   # names of nodes (same cell first, then global) to await
    required: bool = False                      # exits for good -> the whole bringup shuts down
    enabled: bool = True
    lifecycle: bool = False                     # a managed node: configured and activated once started

    @field_validator('restart', mode='before')
    @classmethod
    def _restart_shorthand(cls, value):
        return {'policy': value} if isinstance(value, str) else value

    @field_validator('name')
    @classmethod
    def _plain_name(cls, value):
        if not re.fullmatch(r'[A-Za-z0-9_\-]+', value):
            raise ValueError(f'node name {value!r}: use letters, digits, _ and - only')
        return value

    @model_validator(mode='after')
    def _one_way_to_start(self):
        ways = [self.module is not None, self.cmd is not None,
                self.package is not None or self.executable is not None]
        if sum(ways) != 1:
            raise ValueError(f'node {self.name!r}: give exactly one of module, cmd, package+executable')
        if (self.package is None) != (self.executable is None):
            raise ValueError(f'node {self.name!r}: package and executable go together')
        if self.component is not None:
            if ':' not in self.component and self.module is None:
                raise ValueError(f'node {self.name!r}: component {self.component!r} needs module:Class '
                                 '(or a module)')
            if not self.ros_args:
                raise ValueError(f'node {self.name!r}: a component takes its ROS arguments (ros_args: true)')
        return self

    @property
    def plugin(self) -> str | None:
        """The component as `module:Class`."""
        if self.component is None or ':' in self.component:
            return self.component
        return f'{self.module}:{self.component}'


class ComposeSpec(BaseModel):
    """A cell's components in one process: the executor (enpire_common.composition.EXECUTORS; default
    the container's) and the restart policy of the whole process (default: the file's)."""
    model_config = ConfigDict(extra='forbid')

    executor: str | None = None
    restart: RestartPolicy | None = None

    @field_validator('restart', mode='before')
    @classmethod
    def _restart_shorthand(cls, value):
        return {'policy': value} if isinstance(value, str) else value


class CellsSpec(BaseModel):
    model_config = ConfigDict(extra='forbid')

    count: int = Field(1, ge=0)
    first_index: int = Field(0, ge=0)
    namespace: str = 'cell_${index}'
    compose: ComposeSpec | None = None          # the cell's components in one process
    nodes: list[dict[str, Any]] = Field(default_factory=list)   # NodeSpec templates, validated per cell

    @field_validator('compose', mode='before')
    @classmethod
    def _compose_shorthand(cls, value):
        if isinstance(value, bool):
            return {} if value else None
        return value


class Defaults(BaseModel):
    model_config = ConfigDict(extra='forbid')

    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    ready_timeout_s: float = Field(60.0, gt=0)
    shutdown_grace_s: float = Field(10.0, gt=0)   # after SIGINT, before SIGKILL of a node's process group

    @field_validator('restart', mode='before')
    @classmethod
    def _restart_shorthand(cls, value):
        return {'policy': value} if isinstance(value, str) else value


class BringupFile(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str = 'bringup'
    description: str = ''
    task: str | None = None       # the task its cells run (${task}); `enpire up --task` overrides it
    env: dict[str, str] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    cells: CellsSpec | None = None
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    source: str | None = None     # set by load(): the file this came from (for ${here})


@dataclass
class ExpandedNode:
    """A node of the bringup with every substitution done: what both the supervisor and launch build."""
    label: str                      # unique: '<cell>.<name>' or '<name>' for global nodes
    name: str
    cell: str | None
    index: int | None
    namespace: str
    module: str | None
    package: str | None
    executable: str | None
    cmd: list[str] | None
    node_name: str | None
    params_files: list[str]
    parameters: dict[str, Any]
    remaps: dict[str, str]
    env: dict[str, str]
    ros_args: bool
    restart: RestartPolicy
    ready: ReadyCheck | None
    after: list[str]                # labels
    required: bool
    ready_names: dict[str, str] = field(default_factory=dict)  # kind -> absolute graph name
    lifecycle: bool = False
    plugin: str | None = None       # 'module:Class' when the node can be composed

    @property
    def fully_qualified_name(self) -> str:
        return _absolute(self.namespace, self.node_name or self.name)

    def ros_arguments(self) -> list[str]:
        """The `--ros-args ...` tail: namespace, node name, parameter files, overrides, remaps."""
        if not self.ros_args:
            return []
        args = ['--ros-args', '-r', f'__ns:={self.namespace}']
        if self.node_name:
            args += ['-r', f'__node:={self.node_name}']
        for params_file in self.params_files:
            args += ['--params-file', params_file]
        for key, value in self.parameters.items():
            args += ['-p', f'{key}:={parameter_literal(value)}']
        for src, dst in self.remaps.items():
            args += ['-r', f'{src}:={dst}']
        return args

    def argv(self, python: str) -> list[str]:
        if self.module:
            head = [python, '-m', self.module]
        elif self.cmd:
            head = list(self.cmd)
        else:
            head = [find_executable(self.package, self.executable)]
        return head + self.ros_arguments()


@dataclass
class Expansion:
    bringup: BringupFile
    cells: list[str]
    nodes: list[ExpandedNode]

    def by_label(self) -> dict[str, ExpandedNode]:
        return {n.label: n for n in self.nodes}

    def select(self, only: list[str] | None = None, skip: list[str] | None = None) -> Expansion:
        """Keep nodes whose label or name matches a glob of `only` (all when empty), minus `skip`."""
        def matches(node, patterns):
            return any(fnmatch.fnmatchcase(node.label, p) or fnmatch.fnmatchcase(node.name, p)
                       for p in patterns)
        kept = [n for n in self.nodes if (not only or matches(n, only)) and not (skip and matches(n, skip))]
        labels = {n.label for n in kept}
        for node in kept:
            node.after = [a for a in node.after if a in labels]
        return Expansion(self.bringup, self.cells, kept)

    def processes(self, compose: bool | None = None) -> list[ExpandedProcess]:
        """What is started, in node order: each cell's components as one process where the file composes
        its cells (`compose`: None = as the file says, False = every node alone), every other node alone."""
        spec = self.bringup.cells.compose if self.bringup.cells is not None else None
        composing = spec is not None and compose is not False
        restart = (spec.restart if spec is not None else None) or self.bringup.defaults.restart
        processes: list[ExpandedProcess] = []
        by_cell: dict[str, ExpandedProcess] = {}
        owner: dict[str, str] = {}       # node label -> process label
        for node in self.nodes:
            if composing and node.cell is not None and node.plugin is not None:
                if node.cell not in by_cell:
                    by_cell[node.cell] = ExpandedProcess(node.cell, [], restart, composed=True,
                                                         executor=spec.executor)
                    processes.append(by_cell[node.cell])
                by_cell[node.cell].nodes.append(node)
                owner[node.label] = node.cell
            else:
                processes.append(ExpandedProcess(node.label, [node], node.restart))
                owner[node.label] = node.label
        for process in processes:
            process.after = list(dict.fromkeys(owner[dep] for node in process.nodes for dep in node.after
                                               if owner[dep] != process.label))
        return processes


@dataclass
class ExpandedProcess:
    """One process of the bringup: a node alone, or a cell's components (enpire_common.composition)."""
    label: str                      # the node's label, or the cell's name for a composed cell
    nodes: list[ExpandedNode]
    restart: RestartPolicy
    composed: bool = False
    executor: str | None = None     # composed: the container's executor (None: its default)
    after: list[str] = field(default_factory=list)   # process labels

    def argv(self, python: str) -> list[str]:
        if not self.composed:
            return self.nodes[0].argv(python)
        head = [python, '-m', COMPOSITION_MODULE] + (['--executor', self.executor] if self.executor else [])
        return head + [token for node in self.nodes for token in [node.plugin, *node.ros_arguments(), '--']]

    @property
    def env(self) -> dict[str, str]:
        return {key: value for node in self.nodes for key, value in node.env.items()}

    @property
    def required(self) -> bool:
        return any(node.required for node in self.nodes)

    @property
    def ready_names(self) -> list[tuple[str, str]]:
        """(kind, absolute name) of every topic, service and action that must be on the graph."""
        return [(kind, name) for node in self.nodes for kind, name in node.ready_names.items()]

    @property
    def managed(self) -> list[str]:
        """Fully qualified names of the managed nodes that must be brought to active."""
        return [node.fully_qualified_name for node in self.nodes if node.lifecycle]

    @property
    def ready_log(self) -> str | None:
        patterns = [node.ready.log for node in self.nodes if node.ready and node.ready.log]
        if len(patterns) > 1:
            raise ValueError(f'{self.label}: a composed process takes at most one log ready check, got '
                             f'{patterns}')
        return patterns[0] if patterns else None

    @property
    def ready_delay_s(self) -> float:
        return max((node.ready.delay_s for node in self.nodes if node.ready), default=0.0)

    @property
    def ready_timeout_s(self) -> float | None:
        return max((node.ready.timeout_s for node in self.nodes if node.ready), default=None)


# --------------------------------------------------------------------------------------------------------
def parameter_literal(value: Any) -> str:
    """A value as rcl parses `-p name:=<yaml>`: typed scalars, flow-style lists, quoted ambiguous strings."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f'parameter value {value} is not finite')
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()
    if text.endswith('\n...'):
        text = text[:-4].rstrip()
    elif text.endswith('...'):
        text = text[:-3].rstrip()
    return text


def share_directory(package: str) -> str:
    """Installed share directory of a package; for this package, falls back to the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(package)
    except Exception:  # PackageNotFoundError, or ament_index_python missing
        if package == PACKAGE:
            return str(_SOURCE_TREE)
        raise LookupError(f'package {package!r} is not installed (is the workspace built and sourced?)') \
            from None


def find_executable(package: str, executable: str) -> str:
    """`ros2 run` lookup without ros2: <prefix>/lib/<package>/<executable>."""
    from ament_index_python.packages import get_package_prefix
    path = Path(get_package_prefix(package)) / 'lib' / package / executable
    if not path.exists():
        raise FileNotFoundError(f'no executable {executable!r} in package {package!r} ({path})')
    return str(path)


def _substitute(value: Any, variables: dict[str, Any], here: str) -> Any:
    if isinstance(value, dict):
        return {_substitute(k, variables, here): _substitute(v, variables, here) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables, here) for v in value]
    if not isinstance(value, str):
        return value
    whole = _TOKEN.fullmatch(value)
    if whole and whole.group(1) in variables:
        return copy.deepcopy(variables[whole.group(1)])

    def one(match):
        key = match.group(1)
        if key in variables:
            found = variables[key]
            return ','.join(map(str, found)) if isinstance(found, list) else str(found)
        if key == 'here':
            return here
        if key.startswith('share:'):
            return share_directory(key.split(':', 1)[1])
        if key == 'task':
            raise KeyError(f'${{task}} in {value!r}: the bringup names no task (give it `task:`, or --task)')
        if key.startswith('env:'):
            name, has_default, default = key[4:].partition(':-')
            if name not in os.environ and not has_default:
                raise KeyError(f'${{{key}}}: environment variable {name} is not set (use ${{env:{name}:-x}})')
            return os.environ.get(name, default)
        raise KeyError(f'unknown substitution ${{{key}}} in {value!r}')
    for _ in range(8):
        replaced = _TOKEN.sub(one, value)
        if replaced == value:
            break
        value = replaced
    return value


def _absolute(namespace: str, name: str) -> str:
    if name.startswith('/'):
        return name
    return namespace.rstrip('/') + '/' + name


def _normalise_namespace(namespace: str) -> str:
    namespace = '/' + namespace.strip('/')
    return namespace


# --------------------------------------------------------------------------------------------------------
def resolve_path(name_or_path: str | os.PathLike) -> Path:
    """A bringup file by path, or by name from this package's config/bringup ('sim_cells' works)."""
    path = Path(name_or_path)
    if path.exists():
        return path.resolve()
    folders = [Path(share_directory(PACKAGE)) / 'config' / 'bringup',
               _SOURCE_TREE / 'config' / 'bringup']
    for folder in folders:
        for candidate in (folder / path.name, folder / f'{path.name}.yaml'):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f'no bringup file {name_or_path!r} (looked in . and {folders[0]})')


def load(name_or_path: str | os.PathLike) -> BringupFile:
    path = resolve_path(name_or_path)
    data = yaml.safe_load(path.read_text()) or {}
    bringup = BringupFile.model_validate(data)
    bringup.source = str(path)
    return bringup


def expand(bringup: BringupFile, cells: int | list[str] | None = None, task: str | None = None) -> Expansion:
    """Every node of every cell, substituted and checked; `cells` overrides the file's count, or names
    the cells (their namespaces) in place of the file's namespace pattern; `task` overrides the file's."""
    here = str(Path(bringup.source).parent) if bringup.source else os.getcwd()
    spec = bringup.cells or CellsSpec(count=0)
    named = list(cells) if isinstance(cells, (list, tuple)) else None
    count = len(named) if named is not None else spec.count if cells is None else cells
    indices = list(range(spec.first_index, spec.first_index + count))
    base: dict[str, Any] = {'count': count}
    if task or bringup.task:
        base['task'] = task or bringup.task
    cell_names = [name.strip('/') for name in named] if named is not None else [
        str(_substitute(spec.namespace, {**base, 'index': i}, here)).strip('/') for i in indices]
    base['cells'] = cell_names
    env = {k: str(v) for k, v in _substitute(bringup.env, base, here).items()}

    def build(raw: dict, variables: dict, cell: str | None, index: int | None) -> ExpandedNode | None:
        node = NodeSpec.model_validate(_substitute(raw, variables, here))
        if not node.enabled:
            return None
        namespace = _normalise_namespace(node.namespace if node.namespace is not None else (cell or '/'))
        restart = node.restart or bringup.defaults.restart
        ready = node.ready
        if ready is not None and 'timeout_s' not in (raw.get('ready') or {}):
            ready = ready.model_copy(update={'timeout_s': bringup.defaults.ready_timeout_s})
        ready_names = {}
        if ready is not None:
            for kind in ('topic', 'service', 'action'):
                if getattr(ready, kind):
                    ready_names[kind] = _absolute(namespace, getattr(ready, kind))
        return ExpandedNode(
            label=f'{cell}.{node.name}' if cell else node.name, name=node.name, cell=cell, index=index,
            namespace=namespace, module=node.module, package=node.package, executable=node.executable,
            cmd=node.cmd, node_name=node.node_name, params_files=[str(p) for p in node.params_files],
            parameters=dict(node.parameters), remaps={str(k): str(v) for k, v in node.remaps.items()},
            env={**env, **{k: str(v) for k, v in node.env.items()}}, ros_args=node.ros_args, restart=restart,
            ready=ready, after=list(node.after), required=node.required, ready_names=ready_names,
            lifecycle=node.lifecycle, plugin=node.plugin)

    nodes: list[ExpandedNode] = []
    for index, cell in zip(indices, cell_names, strict=True):
        for raw in spec.nodes:
            built = build(raw, {**base, 'index': index, 'cell': cell}, cell, index)
            if built:
                nodes.append(built)
    for raw in bringup.nodes:
        built = build(raw, base, None, None)
        if built:
            nodes.append(built)

    labels = [n.label for n in nodes]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f'duplicate node labels after expansion: {duplicates}')
    known = set(labels)
    for node in nodes:
        resolved = []
        for dep in node.after:
            candidates = ([f'{node.cell}.{dep}'] if node.cell else []) + [dep]
            found = [c for c in candidates if c in known][:1]
            if not found and any(ch in dep for ch in '*?['):   # a glob: '*.trial_server' = every cell's
                found = sorted(fnmatch.filter(labels, dep))
                if node.cell:
                    found = [f for f in found if f.startswith(f'{node.cell}.')] or found
            if not found and not any(ch in dep for ch in '*?['):
                raise ValueError(f'{node.label}: after: {dep!r} names no node of this bringup')
            resolved += [f for f in found if f != node.label and f not in resolved]
        node.after = resolved
    _check_acyclic(nodes)
    return Expansion(bringup, cell_names, nodes)


def _check_acyclic(nodes: list[ExpandedNode]) -> None:
    after = {n.label: n.after for n in nodes}
    state: dict[str, int] = {}

    def visit(label, trail):
        if state.get(label) == 2:
            return
        if state.get(label) == 1:
            raise ValueError(f'after: cycle through {" -> ".join(trail + [label])}')
        state[label] = 1
        for dep in after[label]:
            visit(dep, trail + [label])
        state[label] = 2
    for label in after:
        visit(label, [])


def missing_files(expansion: Expansion) -> list[str]:
    """Parameter files named by the expansion that do not exist (a typo, or a package not yet built)."""
    return sorted({f'{n.label}: {p}' for n in expansion.nodes for p in n.params_files
                   if not Path(p).exists()})
