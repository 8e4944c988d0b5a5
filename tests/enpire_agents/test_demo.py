"""The demo's wiring, without starting it: its cells are the bringup file's, it records one bag per trial
under its run folder, and the experiment's pacing reaches the simulator and safety."""
import sys

from enpire_common.cells import cell_expansion

from enpire_agents.demo import cell_parameters
from enpire_agents.experiment import config_dir, load_experiment


def test_the_demo_records_one_bag_per_trial_under_its_run_folder(tmp_path):
    config = load_experiment(config_dir() / 'demo.yaml', cells=['cell_0', 'cell_1'], pacing='real_time')
    assert config.record
    out = tmp_path / 'runs' / 'demo_20260101_000000'
    expansion = cell_expansion(config.cells, bag_dir=lambda cell: out / 'bags' / cell,
                               parameters=cell_parameters(config))
    assert expansion.cells == ['cell_0', 'cell_1']
    assert {n.name for n in expansion.nodes} == {'sim', 'safety', 'verify', 'reset', 'recorder',
                                                 'trial_server'}
    servers = {n.label: n.argv(sys.executable) for n in expansion.nodes if n.name == 'trial_server'}
    assert sorted(servers) == ['cell_0.trial_server', 'cell_1.trial_server']
    for cell in config.cells:
        assert f'bag_dir:={out / "bags" / cell}' in servers[f'{cell}.trial_server']
        assert 'verify_every_n_steps:=10' in servers[f'{cell}.trial_server']
    for node in expansion.nodes:
        assert node.namespace in ('/cell_0', '/cell_1')
        if node.name in ('sim', 'safety'):
            assert 'pacing:=real_time' in node.argv(sys.executable)


def test_the_demo_of_a_task_is_its_own_config_or_the_default_that_runs_it():
    from enpire_agents.demo import demo_config
    from enpire_agents.experiment import config_dir, load_experiment

    default = config_dir() / 'demo.yaml'
    assert demo_config('') == default and demo_config(load_experiment(default).task) == default
    assert demo_config('peg_insertion') == config_dir() / 'demo_peg_insertion.yaml'
    assert load_experiment(demo_config('peg_insertion')).task == 'peg_insertion'
    assert not demo_config('no_such_task').exists()       # named, so the error says which file is missing
