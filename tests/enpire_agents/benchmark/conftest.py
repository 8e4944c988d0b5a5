"""A tiny base experiment and a matrix writer for the benchmark tests."""
from __future__ import annotations

import pytest
import yaml

TINY_EXPERIMENT = {
    'name': 'tiny', 'task': 'pusht', 'cells': ['cell_0'], 'team': {'size': 1}, 'pacing': 'as_fast',
    'budgets': {'wall_clock_s': 60, 'trials': 10},
    'success_bar': {'k': 2, 'pass_at_k': 0.99, 'n_eval': 1, 'max_confirmations': 1},
    'attempts': 2, 'steps_per_attempt': 15,
    'improvement': {'seeds': {'start': 0, 'count': 10}, 'trials_per_node': 1, 'max_rounds': 2},
    'evaluation': {'seeds': {'start': 900000, 'count': 1}},
}


@pytest.fixture
def write_matrix(tmp_path):
    """write_matrix(**fields) -> path of a matrix YAML over the tiny experiment (fields replace defaults)."""
    experiment = tmp_path / 'tiny_experiment.yaml'
    experiment.write_text(yaml.safe_dump(TINY_EXPERIMENT))

    def write(text: str | None = None, **fields):
        path = tmp_path / 'matrix.yaml'
        if text is not None:
            path.write_text(text)
            return path
        data = {'name': 'tiny_bench', 'experiment': experiment.name,
                'backends': [{'name': 'offline', 'agent': {'backend': 'offline'}}],
                'team_sizes': [1, 4, 8], 'repeats': 3, 'pacing': 'real_time', 'wall_clock_cap_s': 600}
        data.update(fields)
        path.write_text(yaml.safe_dump(data))
        return path
    return write
