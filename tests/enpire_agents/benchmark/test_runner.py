"""The runner's pieces that need no graph: backends per run (recording, replaying), resuming."""
import pytest

from enpire_agents.backends.offline import OfflineBackend
from enpire_agents.backends.openai_backend import OpenAIBackend
from enpire_agents.backends.transcript import ReplayBackend, TranscriptHeader
from enpire_agents.benchmark import report, runner
from enpire_agents.benchmark.aggregate import RunRecord
from enpire_agents.benchmark.matrix import load_matrix

LLM = [{'name': 'gpt', 'agent': {'backend': 'openai', 'model': 'gpt-test'}, 'transcripts': 'record'}]


def test_llm_backends_record_one_transcript_per_agent(write_matrix, tmp_path):
    matrix = load_matrix(write_matrix(backends=LLM, team_sizes=[4], repeats=1))
    (run,) = matrix.runs()
    backends = runner.build_backends(run, matrix.experiment(run), tmp_path / 'run', tmp_path / 'transcripts')
    assert len(backends) == 4 and all(isinstance(b, OpenAIBackend) and b.recorder for b in backends)
    written = sorted(p.name for p in (tmp_path / 'transcripts' / run.run_id).iterdir())
    assert written == [f'agent_{i}.jsonl' for i in range(4)]
    assert runner.replay_stats(backends) is None


def test_replayed_runs_read_the_transcripts_and_report_how_they_went(write_matrix, tmp_path):
    matrix = load_matrix(write_matrix(backends=LLM, team_sizes=[2], repeats=1)).with_replay(tmp_path / 'pub')
    (run,) = matrix.runs()
    assert run.transcripts == 'replay' and runner.transcript_root(matrix, tmp_path) == (tmp_path / 'pub')
    folder = tmp_path / 'pub' / run.run_id
    folder.mkdir(parents=True)
    header = TranscriptHeader(backend='openai:gpt-test', provider='openai', model='gpt-test', images=True)
    for i in range(2):
        (folder / f'agent_{i}.jsonl').write_text(header.model_dump_json() + '\n')
    backends = runner.build_backends(run, matrix.experiment(run), tmp_path / 'run', tmp_path / 'pub')
    assert all(isinstance(b, ReplayBackend) for b in backends)
    backends[1].stopped = 'transcript agent_1.jsonl exhausted'
    stats = runner.replay_stats(backends)
    assert stats.exchanges == 0 and stats.stopped_agents == ['agent_1: transcript agent_1.jsonl exhausted']


def test_a_missing_transcript_fails_the_run_before_any_cell_starts(write_matrix, tmp_path):
    matrix = load_matrix(write_matrix(backends=LLM, team_sizes=[1], repeats=1)).with_replay(tmp_path / 'none')
    (run,) = matrix.runs()
    record = runner.run_one(matrix, run, tmp_path / 'out', say=lambda line: None)
    assert record.status == 'failed' and 'no transcript at' in record.error and record.replayed
    assert not (tmp_path / 'out' / 'runs' / run.run_id / 'node_logs').exists()


def test_offline_backends_are_built_as_the_team_would(write_matrix, tmp_path):
    matrix = load_matrix(write_matrix(team_sizes=[2], repeats=1))
    (run,) = matrix.runs()
    backends = runner.build_backends(run, matrix.experiment(run), tmp_path, tmp_path / 't')
    assert [type(b) for b in backends] == [OfflineBackend, OfflineBackend]


def test_only_runs_finished_with_the_same_spec_are_skipped(write_matrix, tmp_path):
    matrix = load_matrix(write_matrix(team_sizes=[1, 4], repeats=1))
    one, four = matrix.runs()
    records = [RunRecord(spec=one, status='done'), RunRecord(spec=four, status='failed', error='x')]
    report.write(report.build(matrix, records), tmp_path)
    assert list(runner.finished_runs(tmp_path, matrix.runs())) == [one.run_id]
    longer = matrix.with_fields(wall_clock_cap_s=900)
    assert runner.finished_runs(tmp_path, longer.runs()) == {}


@pytest.mark.parametrize('fields', [{'team_sizes': [0]}, {'repeats': 0}])
def test_command_line_replacements_are_validated(write_matrix, fields):
    from enpire_agents.benchmark.matrix import MatrixConfigError
    with pytest.raises(MatrixConfigError, match='invalid benchmark matrix'):
        load_matrix(write_matrix()).with_fields(**fields)


def test_an_interrupted_run_is_kept_aside_and_run_again(write_matrix, tmp_path):
    matrix = load_matrix(write_matrix(backends=LLM, team_sizes=[1], repeats=1)).with_replay(tmp_path / 'none')
    (run,) = matrix.runs()
    earlier = tmp_path / 'out' / 'runs' / run.run_id
    (earlier / 'hypothesis_tree.git').mkdir(parents=True)
    (earlier / 'progress.log').write_text('interrupted\n')
    record = runner.run_one(matrix, run, tmp_path / 'out', say=lambda line: None)
    kept = earlier.with_name(f'{run.run_id}.attempt1')
    assert (kept / 'progress.log').read_text() == 'interrupted\n' and (kept / 'hypothesis_tree.git').is_dir()
    assert not (earlier / 'hypothesis_tree.git').exists() and 'no transcript at' in record.error
