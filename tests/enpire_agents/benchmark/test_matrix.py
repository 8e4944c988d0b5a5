"""Matrix config: expansion into runs, and clear errors for matrices that cannot run."""
import pytest
import yaml

from enpire_agents.benchmark.matrix import MatrixConfigError, load_matrix


def test_paired_matrix_expands_repeat_by_repeat_with_cells_per_team_size(write_matrix):
    matrix = load_matrix(write_matrix())
    runs = matrix.runs()
    assert [(r.team_size, r.cells, r.repeat) for r in runs] == [
        (n, n, rep) for rep in range(3) for n in (1, 4, 8)]
    assert len({r.run_id for r in runs}) == 9 and runs[0].run_id == 'pusht-offline-team1-cells1-r0'
    assert [r.seed for r in runs[::3]] == [0, 1, 2]


def test_a_run_sets_team_cells_pacing_cap_and_confirmation_on_the_base_experiment(write_matrix):
    matrix = load_matrix(write_matrix(overrides={'steps_per_attempt': 20}))
    run = matrix.runs()[2]
    config = matrix.experiment(run)
    assert config.team.size == 8 and config.cells == [f'cell_{i}' for i in range(8)]
    assert config.pacing == 'real_time' and config.budgets.wall_clock_s == 600
    assert config.success_bar.held_out_confirmation is False and config.steps_per_attempt == 20
    assert config.name == run.run_id and config.team.agent_specs()[0].backend == 'offline'


def test_runs_do_not_record_trial_bags_unless_the_matrix_asks(write_matrix):
    matrix = load_matrix(write_matrix())
    base = yaml.safe_load(matrix.experiment_path.read_text())
    matrix.experiment_path.write_text(yaml.safe_dump({**base, 'record': True}))   # as the demo's does
    run = matrix.runs()[0]
    assert matrix.experiment(run).record is False
    assert load_matrix(write_matrix(record=True)).experiment(run).record is True


def test_cell_counts_crossed_with_team_sizes(write_matrix):
    runs = load_matrix(write_matrix(team_sizes=[1, 2], cells_per_team=[1, 3], repeats=1)).runs()
    assert [(r.team_size, r.cells) for r in runs] == [(1, 1), (1, 3), (2, 1), (2, 3)]


@pytest.mark.parametrize('fields, message', [
    ({'team_sizes': [1, 0]}, 'team sizes must be >= 1'),
    ({'team_sizes': []}, 'at least one team size'),
    ({'backends': [{'name': 'x', 'agent': {'backend': 'gpt9'}}]}, "unknown backend 'gpt9'"),
    ({'backends': [{'name': 'x', 'agent': {'backend': 'openai'}}]}, 'needs `model`'),
    ({'backends': [{'name': 'o', 'agent': {'backend': 'offline'}, 'transcripts': 'record'}]},
     'transcripts (record) are for LLM backends'),
    ({'backends': [{'name': 'a', 'agent': {'backend': 'anthropic', 'model': 'm', 'tools': True},
                    'transcripts': 'record'}]}, 'agent (tools: true) cannot be recorded'),
    ({'repeats': 0}, 'repeats'),
    ({'pacing': 'slow'}, 'pacing'),
    ({'cells_per_team': [0]}, 'cell counts must be >= 1'),
    ({'tasks': ['folding']}, "unknown task(s) ['folding']"),
    ({'surprise': 1}, 'surprise'),
    ({'experiment': 'missing.yaml'}, 'does not exist'),
])
def test_invalid_matrices_say_which_field_and_why(write_matrix, fields, message):
    with pytest.raises(MatrixConfigError, match='matrix|run|exist') as caught:
        load_matrix(write_matrix(**fields))
    assert message in str(caught.value)


@pytest.mark.parametrize('text, message', [('team_sizes: [1, 4\n', 'not valid YAML'),
                                           ('- just\n- a list\n', 'expected a mapping')])
def test_bad_yaml_is_a_clear_error(write_matrix, text, message):
    with pytest.raises(MatrixConfigError, match=message):
        load_matrix(write_matrix(text))


def test_missing_matrix_file(tmp_path):
    with pytest.raises(MatrixConfigError, match='does not exist'):
        load_matrix(tmp_path / 'nope.yaml')


def test_replay_switches_llm_backends_only(write_matrix, tmp_path):
    matrix = load_matrix(write_matrix(backends=[
        {'name': 'offline', 'agent': {'backend': 'offline'}},
        {'name': 'gpt', 'agent': {'backend': 'openai', 'model': 'gpt-test'}, 'transcripts': 'record'}]))
    replay = matrix.with_replay(tmp_path / 'published')
    modes = {r.backend: r.transcripts for r in replay.runs()}
    assert modes == {'offline': 'off', 'gpt': 'replay'}
    assert replay.config.transcript_dir == str((tmp_path / 'published').resolve())


def test_the_tasks_are_the_base_experiments_unless_the_matrix_names_them(write_matrix):
    assert load_matrix(write_matrix()).tasks == ['pusht']
    assert {r.task for r in load_matrix(write_matrix()).runs()} == {'pusht'}
    assert load_matrix(write_matrix(tasks=['pusht'])).tasks == ['pusht']
    with pytest.raises(MatrixConfigError, match="unknown task"):
        load_matrix(write_matrix(tasks=['fold_laundry']))
