"""The bringup file: templates expanded per cell, substitutions with types, ros args, dependencies, errors."""
from __future__ import annotations

import pytest
import yaml
from enpire_common import bringup_file
from enpire_common.bringup_file import expand, load, parameter_literal


def write(tmp_path, data) -> str:
    path = tmp_path / 'bringup.yaml'
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


BASIC = {
    'name': 'two',
    'env': {'A': 'x'},
    'defaults': {'restart': 'on_failure'},
    'cells': {'count': 2, 'namespace': 'cell_${index}', 'nodes': [
        {'name': 'sim', 'module': 'pkg.sim',
         'parameters': {'seed': '${index}', 'who': '${cell}', 'flag': True},
         'params_files': ['${here}/p.yaml'], 'remaps': {'in': 'out'}, 'ready': {'topic': 'cell_state'}},
        {'name': 'server', 'module': 'pkg.server', 'after': ['sim'], 'restart': {'policy': 'never'},
         'env': {'B': '${cell}'}},
    ]},
    'nodes': [{'name': 'team', 'module': 'pkg.team', 'parameters': {'cells': '${cells}', 'n': '${count}'},
               'after': ['*.server'], 'required': True}],
}


def test_expansion_per_cell(tmp_path):
    expansion = expand(load(write(tmp_path, BASIC)))
    assert expansion.cells == ['cell_0', 'cell_1']
    assert [n.label for n in expansion.nodes] == ['cell_0.sim', 'cell_0.server', 'cell_1.sim',
                                                 'cell_1.server', 'team']
    sim1 = expansion.by_label()['cell_1.sim']
    assert sim1.namespace == '/cell_1' and sim1.parameters == {'seed': 1, 'who': 'cell_1', 'flag': True}
    assert sim1.params_files == [f'{tmp_path}/p.yaml']
    assert sim1.ready_names == {'topic': '/cell_1/cell_state'}
    assert sim1.restart.policy == 'on_failure'                     # the default
    server1 = expansion.by_label()['cell_1.server']
    assert server1.after == ['cell_1.sim'] and server1.restart.policy == 'never'
    assert server1.env == {'A': 'x', 'B': 'cell_1'}
    team = expansion.by_label()['team']
    assert team.namespace == '/' and team.parameters == {'cells': ['cell_0', 'cell_1'], 'n': 2}
    assert team.after == ['cell_0.server', 'cell_1.server'] and team.required
    assert sim1.argv('py') == ['py', '-m', 'pkg.sim', '--ros-args', '-r', '__ns:=/cell_1',
                               '--params-file', f'{tmp_path}/p.yaml', '-p', 'seed:=1', '-p', 'who:=cell_1',
                               '-p', 'flag:=true', '-r', 'in:=out']


def test_cells_override_and_select(tmp_path):
    expansion = expand(load(write(tmp_path, BASIC)), cells=3)
    assert expansion.cells == ['cell_0', 'cell_1', 'cell_2']
    assert len(expansion.nodes) == 7
    picked = expansion.select(skip=['team'])
    assert 'team' not in picked.by_label() and len(picked.nodes) == 6
    only = expand(load(write(tmp_path, BASIC))).select(only=['cell_1.*'])
    assert [n.label for n in only.nodes] == ['cell_1.sim', 'cell_1.server']
    zero = expand(load(write(tmp_path, BASIC)), cells=0)
    assert [n.label for n in zero.nodes] == ['team'] and zero.by_label()['team'].after == []


def test_cells_by_name(tmp_path):
    """Named cells (a run's own, e.g. a bench's `bench_rt`) take the file's template in place of its
    namespace pattern; indices still count from the first."""
    expansion = expand(load(write(tmp_path, BASIC)), cells=['bench_rt', '/left'])
    assert expansion.cells == ['bench_rt', 'left']
    sim = expansion.by_label()['left.sim']
    assert sim.namespace == '/left' and sim.parameters['seed'] == 1 and sim.parameters['who'] == 'left'
    assert expansion.by_label()['team'].parameters['cells'] == ['bench_rt', 'left']


def test_substitutions(tmp_path, monkeypatch):
    monkeypatch.setenv('ENPIRE_X', 'from_env')
    monkeypatch.delenv('ENPIRE_UNSET', raising=False)
    data = {'nodes': [{'name': 'a', 'cmd': ['echo', '${env:ENPIRE_X}', '${env:ENPIRE_UNSET:-dflt}',
                                            '${env:ENPIRE_UNSET:-${here}/x}'], 'ros_args': False}]}
    node = expand(load(write(tmp_path, data))).nodes[0]
    assert node.argv('py') == ['echo', 'from_env', 'dflt', f'{tmp_path}/x']
    data = {'nodes': [{'name': 'a', 'module': 'm', 'parameters': {'p': '${env:ENPIRE_UNSET}'}}]}
    with pytest.raises(KeyError, match='ENPIRE_UNSET'):
        expand(load(write(tmp_path, data)))
    data = {'nodes': [{'name': 'a', 'module': 'm', 'parameters': {'p': '${nonsense}'}}]}
    with pytest.raises(KeyError, match='nonsense'):
        expand(load(write(tmp_path, data)))


@pytest.mark.parametrize('value, literal', [
    ('as_fast', 'as_fast'), ('1', "'1'"), ('true', "'true'"), (True, 'true'), (3, '3'), (0.5, '0.5'),
    (['a', 'b'], '[a, b]'), ([1.0, 2.5], '[1.0, 2.5]'), ('', "''"), ('a b', 'a b'), ('/tmp/x:y', '/tmp/x:y'),
])
def test_parameter_literal_round_trips_through_yaml(value, literal):
    assert parameter_literal(value) == literal
    assert yaml.safe_load(literal) == value


@pytest.mark.parametrize('nodes, match', [
    ([{'name': 'a', 'module': 'm'}, {'name': 'a', 'module': 'm'}], 'duplicate'),
    ([{'name': 'a', 'module': 'm', 'after': ['b']}], 'names no node'),
    ([{'name': 'a', 'module': 'm', 'after': ['b']}, {'name': 'b', 'module': 'm', 'after': ['a']}], 'cycle'),
    ([{'name': 'a'}], 'exactly one of'),
    ([{'name': 'a', 'module': 'm', 'cmd': ['x']}], 'exactly one of'),
    ([{'name': 'a b', 'module': 'm'}], 'letters'),
    ([{'name': 'a', 'module': 'm', 'restart': 'sometimes'}], 'policy'),
    ([{'name': 'a', 'cmd': ['x'], 'component': 'Node'}], 'needs module:Class'),
    ([{'name': 'a', 'cmd': ['x'], 'component': 'm:Node', 'ros_args': False}], 'takes its ROS arguments'),
])
def test_bad_files_are_refused_with_a_reason(tmp_path, nodes, match):
    with pytest.raises(ValueError, match=match):
        expand(load(write(tmp_path, {'nodes': nodes})))


COMPOSED = {
    'name': 'composed',
    'defaults': {'restart': 'on_failure'},
    'cells': {'count': 2, 'compose': {'executor': 'submit_once', 'restart': 'always'}, 'nodes': [
        {'name': 'driver', 'cmd': ['drv'], 'ros_args': False, 'ready': {'log': 'driver up'}},
        {'name': 'sim', 'module': 'pkg.sim', 'component': 'Sim', 'ready': {'topic': 'state'},
         'parameters': {'seed': '${index}'}, 'remaps': {'/clock': '/${cell}/clock'}},
        {'name': 'safety', 'module': 'pkg.safety', 'component': 'other.pkg:Safety', 'lifecycle': True,
         'after': ['sim', 'driver'], 'ready': {'service': 'estop', 'delay_s': 2.0}},
    ]},
    'nodes': [{'name': 'team', 'module': 'pkg.team', 'after': ['*.safety']}],
}


def test_a_composed_cell_is_one_process_of_its_components(tmp_path):
    expansion = expand(load(write(tmp_path, COMPOSED)))
    processes = expansion.processes()
    assert [p.label for p in processes] == ['cell_0.driver', 'cell_0', 'cell_1.driver', 'cell_1', 'team']
    cell = processes[1]
    assert cell.composed and [n.name for n in cell.nodes] == ['sim', 'safety']
    assert cell.after == ['cell_0.driver'] and processes[4].after == ['cell_0', 'cell_1']
    assert cell.restart.policy == 'always' and processes[0].restart.policy == 'on_failure'
    assert cell.managed == ['/cell_0/safety'] and cell.ready_delay_s == 2.0
    assert cell.ready_names == [('topic', '/cell_0/state'), ('service', '/cell_0/estop')]
    assert cell.argv('py') == [
        'py', '-m', 'enpire_common.composition', '--executor', 'submit_once',
        'pkg.sim:Sim', '--ros-args', '-r', '__ns:=/cell_0', '-p', 'seed:=0', '-r', '/clock:=/cell_0/clock',
        '--',
        'other.pkg:Safety', '--ros-args', '-r', '__ns:=/cell_0', '--']
    # each node alone, as before, when asked
    alone = expansion.processes(compose=False)
    assert [p.label for p in alone] == [n.label for n in expansion.nodes]
    assert alone[1].argv('py')[:3] == ['py', '-m', 'pkg.sim']
    assert alone[2].after == ['cell_0.sim', 'cell_0.driver']


def test_disabled_nodes_are_dropped(tmp_path, monkeypatch):
    data = {'nodes': [{'name': 'a', 'module': 'm', 'enabled': '${env:ENPIRE_ON:-false}'}]}
    monkeypatch.delenv('ENPIRE_ON', raising=False)
    assert expand(load(write(tmp_path, data))).nodes == []
    monkeypatch.setenv('ENPIRE_ON', 'true')
    assert len(expand(load(write(tmp_path, data))).nodes) == 1


@pytest.mark.parametrize('name', ['sim_cells', 'real_cell'])
def test_shipped_bringup_files_expand(name):
    bringup = load(name)
    expansion = expand(bringup, cells=3)
    assert expansion.cells == ['cell_0', 'cell_1', 'cell_2']
    labels = expansion.by_label()
    for cell in expansion.cells:
        for node in ('safety', 'verify', 'reset', 'trial_server'):
            assert labels[f'{cell}.{node}'].namespace == f'/{cell}'
        assert labels[f'{cell}.trial_server'].ready_names == {'action': f'/{cell}/run_trial'}
    assert bringup_file.missing_files(expansion) == [], 'a parameter file is missing: run scripts/setup.sh'
    modules = {n.module for n in expansion.nodes}
    if name == 'sim_cells':
        assert {'enpire_sim.sim_cell_node', 'enpire_agents.agent_node'} <= modules
        assert labels['agents'].after == [f'cell_{i}.trial_server' for i in range(3)]
    else:
        assert {'enpire_bringup.adapters.command_adapter_node',
                'enpire_bringup.adapters.camera_relay_node'} <= modules
        assert labels['cell_0.safety'].required


TASK_NODES = ('enpire_sim.sim_cell_node', 'enpire_env.safety_node', 'enpire_env.verify_node')


@pytest.mark.parametrize('name', ['sim_cells', 'real_cell'])
def test_every_node_that_serves_a_task_is_given_the_bringups_task(name):
    """Nothing shipped falls back on "the one installed task": each cell's sim, safety and verify node is
    given the file's task, or the one the caller names."""
    from enpire_common import task_registry
    for task, expected in ((None, load(name).task), ('peg_insertion', 'peg_insertion')):
        nodes = [n for n in expand(load(name), cells=2, task=task).nodes if n.module in TASK_NODES]
        assert len(nodes) == 2 * (3 if name == 'sim_cells' else 2)
        assert all(n.parameters['task'] == expected for n in nodes), [(n.label, n.parameters) for n in nodes]
    assert load(name).task in task_registry.names()


def test_a_task_substitution_without_a_task_is_refused_with_the_reason(tmp_path):
    data = {'cells': {'count': 1, 'nodes': [{'name': 'sim', 'module': 'pkg.sim',
                                              'parameters': {'task': '${task}'}}]}}
    path = write(tmp_path, data)
    with pytest.raises(KeyError, match='the bringup names no task'):
        expand(load(path))
    assert expand(load(path), task='pusht').nodes[0].parameters == {'task': 'pusht'}
