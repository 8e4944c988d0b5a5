"""The experiment config: one loader, clear errors, disjoint seeds."""
import pytest

from enpire_agents.experiment import ExperimentConfigError, config_dir, load_experiment

BASE = {
    'name': 'unit',
    'task': 'pusht',
    'improvement': {'seeds': {'start': 0, 'count': 50}},
    'evaluation': {'seeds': {'start': 1000, 'count': 20}},
    'success_bar': {'n_eval': 20},
}


def _with(**changes):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    data.update(changes)
    return data


def test_shipped_configs_load():
    for name in ('demo.yaml', 'pusht_research.yaml'):
        config = load_experiment(config_dir() / name)
        assert not set(config.improvement_seeds()) & config.held_out_seeds()


def test_defaults_and_seed_forms():
    config = load_experiment(_with(evaluation={'seeds': {'values': [1000, 1001, 1002]}},
                                   success_bar={'n_eval': 3}))
    assert config.evaluation_seeds() == [1000, 1001, 1002]
    assert config.improvement_seeds() == list(range(50))
    assert config.cells == ['cell_0'] and config.team.agent_specs()[0].backend == 'offline'


def test_overlapping_seeds_are_refused():
    with pytest.raises(ExperimentConfigError, match='overlap'):
        load_experiment(_with(evaluation={'seeds': {'start': 40, 'count': 20}}))


def test_ood_seeds_count_as_held_out():
    with pytest.raises(ExperimentConfigError, match='overlap'):
        load_experiment(_with(evaluation={'seeds': {'start': 1000, 'count': 20},
                                          'ood_seeds': {'values': [3]}}))


@pytest.mark.parametrize('change, message', [
    ({'team': {'agents': [{'backend': 'openai'}]}}, 'needs `model`'),
    ({'team': {'agents': [{'backend': 'openai_compatible', 'model': 'kimi'}]}}, 'base_url'),
    ({'team': {'agents': [{'backend': 'gemini'}]}}, 'backend'),
    ({'attempts': 4}, 'exceeds attempts'),
    ({'distribution': 'moon'}, 'unknown distribution'),
    ({'task': 'stack_cups'}, 'unknown task .stack_cups.; known tasks: '),
    ({'evaluation': {'seeds': {'start': 1000, 'count': 20}, 'ood_distribution': 'moon'}},
     'unknown distribution'),
    ({'cells': ['cell_0', '/cell_0']}, 'repeat'),
    ({'success_bar': {'n_eval': 50}}, 'only 20 evaluation seeds'),
    ({'budgets': {'wall_clock_s': -1}}, 'budgets.wall_clock_s'),
    ({'surprise': 1}, 'surprise'),
])
def test_bad_configs_say_what_is_wrong(change, message):
    with pytest.raises(ExperimentConfigError, match=message):
        load_experiment(_with(**change))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ExperimentConfigError, match='does not exist'):
        load_experiment(tmp_path / 'nope.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('name: [unclosed\n')
    with pytest.raises(ExperimentConfigError, match='not valid YAML'):
        load_experiment(bad)


def test_dotted_overrides(tmp_path):
    config = load_experiment(config_dir() / 'demo.yaml', **{'budgets.wall_clock_s': 12.0, 'team.size': 1})
    assert config.budgets.wall_clock_s == 12.0 and config.team.size == 1
