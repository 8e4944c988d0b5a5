"""The hypothesis tree is a real git repository that tells the run's story on its own."""
import subprocess

import pytest

from enpire_agents.hypothesis_tree import GitError, HypothesisTree, NodeResult, empty_policy

EMPTY_POLICY = empty_policy('pusht')


def _result(at_k, at_1=0.0, n=8):
    return NodeResult(trials=n, k=8, successes_at_1=int(at_1 * n), successes_at_k=int(at_k * n),
                      pass_at_1=at_1,
                      pass_at_k=at_k, mean_score=0.9, failure_reasons=['angle off (x2)'])


@pytest.fixture
def tree(tmp_path, monkeypatch):
    # No global git identity: the tree must bring its own.
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv('GIT_AUTHOR_NAME', raising=False)
    return HypothesisTree.create(tmp_path / 'tree.git', 'unit', EMPTY_POLICY)


def _git(tree, *args):
    return subprocess.run(['git', '--git-dir', str(tree.path), *args], capture_output=True, text=True,
                          check=True).stdout


def test_one_branch_per_agent_one_commit_per_idea(tree):
    a1 = tree.commit_idea('agent_0', 'A1\n', 'push the T', _result(0.25), round=1, t_start=0, t_end=1)
    a2 = tree.commit_idea('agent_0', 'A2\n', 'turn first', _result(0.5), round=2, revises=a1.node_id,
                          t_start=1, t_end=2)
    tree.commit_idea('agent_1', 'B1\n', 'spiral in', _result(0.0), round=1, t_start=0, t_end=1.5)
    assert tree.agents() == ['agent_0', 'agent_1']
    assert tree.head('agent_0') == a2.node_id and a2.parent == a1.node_id and a1.parent == tree.root
    assert _git(tree, 'show', f'{a2.node_id}:policy.py') == 'A2\n'
    doc = _git(tree, 'show', f'{a2.node_id}:HYPOTHESIS.md')
    assert 'turn first' in doc and 'pass@8 0.50' in doc
    assert 'pass@8 0.50' in _git(tree, 'log', '-1', '--format=%B', a2.node_id)
    assert _git(tree, 'show', 'main:policy.py') == EMPTY_POLICY
    assert tree.best('agent_0').node_id == a2.node_id and tree.best().node_id == a2.node_id


def test_result_is_a_git_note_and_the_tree_reopens(tree):
    node = tree.commit_idea('agent_0', 'A\n', 'idea', _result(0.75, 0.5), round=1, t_start=3, t_end=9,
                            tokens_in=100, tokens_out=20)
    note = _git(tree, 'notes', '--ref', 'refs/notes/enpire', 'show', node.node_id)
    assert '"pass_at_k": 0.75' in note
    again = HypothesisTree.open(tree.path)
    reopened = again.node(node.node_id)
    assert reopened.result.pass_at_k == 0.75 and (reopened.t_start, reopened.t_end) == (3, 9)
    assert reopened.tokens == 120 and reopened.agent == 'agent_0'


def test_reuse_is_a_merge_edge_between_lanes(tree):
    b1 = tree.commit_idea('agent_1', 'B1\n', 'good idea', _result(0.9), round=1)
    tree.commit_idea('agent_0', 'A1\n', 'weak idea', _result(0.1), round=1)
    a2 = tree.commit_idea('agent_0', 'B1 revised\n', 'take B1, tune gain', _result(0.95), round=2,
                          revises=b1.node_id, reused_from=b1.node_id)
    parents = _git(tree, 'rev-list', '--parents', '-n1', a2.node_id).split()[1:]
    assert b1.node_id in parents and len(parents) == 2
    assert f'Reused-From: {b1.node_id} (agent_1)' in _git(tree, 'log', '-1', '--format=%B', a2.node_id)
    assert tree.node(a2.node_id).reused_from == b1.node_id


def test_pruning_marks_the_dead_end_with_its_reason(tree):
    node = tree.commit_idea('agent_0', 'X\n', 'bad', _result(0.0), round=1)
    pruned = tree.prune(node.node_id, 'worse than its parent')
    assert pruned.pruned == 'worse than its parent'
    tag = f'pruned/agent_0/{node.node_id[:7]}'
    assert 'pruned: worse than its parent' in _git(tree, 'tag', '-n1', '-l', tag)
    assert tree.best() is None and tree.best(include_pruned=True).node_id == node.node_id
    assert HypothesisTree.open(tree.path).node(node.node_id).pruned == 'worse than its parent'


def test_git_log_graph_all_tells_the_story(tree):
    b1 = tree.commit_idea('agent_1', 'B\n', 'idea B', _result(0.5), round=1)
    bad = tree.commit_idea('agent_0', 'A\n', 'idea A', _result(0.0), round=1)
    tree.prune(bad.node_id, 'no better')
    reuse = tree.commit_idea('agent_0', 'A2\n', 'reuse B', _result(0.8), round=2, reused_from=b1.node_id)
    story = _git(tree, 'log', '--graph', '--all', '--oneline', '--decorate')
    assert 'agent/agent_0' in story and 'agent/agent_1' in story and 'pruned/agent_0' in story
    assert 'reuse B' in story and ('|\\' in story or '|/|' in story)      # the merge edge is drawn
    assert b1.node_id in _git(tree, 'rev-list', '--parents', '-n', '1', reuse.node_id).split()[1:]
    assert story.count('Notes') == 0 and 'pass@8 0.80' in story
    assert 'agent_0 #2' in tree.log_graph()


def test_one_repository_per_experiment(tree):
    with pytest.raises(GitError, match='not empty'):
        HypothesisTree.create(tree.path, 'again', EMPTY_POLICY)
