"""The demo's wiring, without starting it: what it records and where its bags go."""
from enpire_agents.demo import demo_commands
from enpire_agents.experiment import config_dir, load_experiment


def test_the_demo_records_one_bag_per_trial_under_its_run_folder(tmp_path):
    config = load_experiment(config_dir() / 'demo.yaml', cells=['cell_0', 'cell_1'])
    assert config.record
    out = tmp_path / 'runs' / 'demo_20260101_000000'
    servers = {name: argv for name, argv in demo_commands(config, out) if name.endswith('.trial_server')}
    assert sorted(servers) == ['cell_0.trial_server', 'cell_1.trial_server']
    for cell in config.cells:
        assert f'bag_dir:={out / "bags" / cell}' in servers[f'{cell}.trial_server']
