"""The hypothesis tree of an experiment, kept as a git repository (git CLI, no rclpy).

- One repository per experiment; its root commit (branch `main`) holds the starting (empty) policy.
- One branch per agent (`agent/<id>`); one commit per idea holding `policy.py` and `HYPOTHESIS.md`,
  the measured result in the message and, as JSON, in a git note (`refs/notes/enpire`).
- Reusing a peer's idea is a merge: the idea commit's parents are the agent's branch head and the
  peer's node, so `git log --graph --all` draws the edge between the lanes; `Reused-From:` records it.
- A dead end is pruned with an annotated tag `pruned/<agent>/<sha7>` whose message is the reason,
  and the reason is added to the node's note.

Commits are written with plumbing (hash-object, mktree, commit-tree, update-ref) so that no working
tree is needed and agents in threads can commit concurrently (one lock serialises git calls).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from pydantic import BaseModel, Field

from enpire_agents.backends.base import code_sha256
from enpire_rollout.child_env import allowlisted_env
from enpire_rollout.trial_outcome import TrialOutcome

NOTES_REF = 'refs/notes/enpire'
_GIT_ENV = {
    'GIT_AUTHOR_NAME': 'enpire-agents', 'GIT_AUTHOR_EMAIL': 'agents@enpire-ros.invalid',
    'GIT_COMMITTER_NAME': 'enpire-agents', 'GIT_COMMITTER_EMAIL': 'agents@enpire-ros.invalid',
    'GIT_CONFIG_NOSYSTEM': '1', 'GIT_CONFIG_GLOBAL': os.devnull, 'GIT_TERMINAL_PROMPT': '0',
    'LC_ALL': 'C',
}

def empty_policy(task: str) -> str:
    """The source every experiment on `task` starts from (`Task.empty_policy`)."""
    from enpire_common import task_registry
    return task_registry.get(task).load('empty_policy')


class GitError(RuntimeError):
    pass


class NodeResult(BaseModel):
    """What an idea measured on the improvement seeds (never the evaluation seeds)."""
    status: str = 'evaluated'            # evaluated | rejected (failed the code check) | error
    trials: int = 0
    k: int = 1
    successes_at_1: int = 0
    successes_at_k: int = 0
    pass_at_1: float = 0.0
    pass_at_k: float = 0.0
    mean_score: float = 0.0
    failure_reasons: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=list)
    rollouts: list[TrialOutcome] = Field(default_factory=list)   # per attempt: scores, reasons; the bags

    @property
    def score(self) -> float:
        """One number to rank ideas: pass@k first, then pass@1, then coverage."""
        return self.pass_at_k + 0.1 * self.pass_at_1 + 0.01 * self.mean_score

    def line(self) -> str:
        if self.status != 'evaluated':
            return f'{self.status}: {"; ".join(self.failure_reasons[:2])}'
        return (f'pass@1 {self.pass_at_1:.2f} ({self.successes_at_1}/{self.trials}), '
                f'pass@{self.k} {self.pass_at_k:.2f} ({self.successes_at_k}/{self.trials}), '
                f'mean score {self.mean_score:.3f}')


class TreeNode(BaseModel):
    node_id: str                         # commit sha
    agent: str
    round: int
    hypothesis: str
    parent: str | None                   # the commit before it on the agent's branch (root for the first)
    reused_from: str | None = None       # a peer's node this idea took and revised
    revises: str | None = None           # the node whose code it changed (own or the peer's)
    result: NodeResult | None = None
    t_start: float = 0.0                 # seconds since the experiment started
    t_end: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    regime: str = 'heuristic_code'
    backend: str = ''
    pruned: str | None = None            # the reason, when pruned
    code_sha256: str = ''                # the policy's fingerprint (`code_sha256`)

    @property
    def score(self) -> float:
        return self.result.score if self.result and self.result.status == 'evaluated' else -1.0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


class HypothesisTree:
    """One experiment's repository. Create with `HypothesisTree.create(path, name)`, reopen with `open`."""

    def __init__(self, path: Path, experiment: str):
        self.path = Path(path)
        self.experiment = experiment
        self._lock = threading.RLock()
        self._nodes: dict[str, TreeNode] = {}
        self.root: str = ''

    @classmethod
    def create(cls, path: str | Path, experiment: str, root_policy: str) -> HypothesisTree:
        tree = cls(Path(path), experiment)
        tree.path.mkdir(parents=True, exist_ok=True)
        if (tree.path / 'HEAD').exists() or any(tree.path.iterdir()):
            raise GitError(f'{tree.path} is not empty; one repository per experiment')
        tree._git('init', '--bare', '--quiet', '--initial-branch=main', cwd_is_repo=False)
        readme = (f'# Hypothesis tree of experiment {experiment}\n\nOne branch per agent (agent/<id>), one '
                  'commit per idea (policy.py + HYPOTHESIS.md), results in the messages and in the notes '
                  f'under {NOTES_REF}; pruned ideas are tagged pruned/<agent>/<sha>.\n')
        tree_sha = tree._tree({'policy.py': root_policy, 'HYPOTHESIS.md': readme})
        tree.root = tree._git('commit-tree', tree_sha, '-m', f'{experiment}: the empty policy').strip()
        tree._git('update-ref', 'refs/heads/main', tree.root)
        return tree

    @classmethod
    def open(cls, path: str | Path) -> HypothesisTree:
        tree = cls(Path(path), experiment=Path(path).name)
        tree.root = tree._git('rev-list', '--max-parents=0', 'refs/heads/main').split()[0]
        for sha in tree._git('notes', '--ref', NOTES_REF, 'list').split('\n'):
            if not sha.strip():
                continue
            _, commit = sha.split()
            node = TreeNode.model_validate_json(tree._git('notes', '--ref', NOTES_REF, 'show', commit))
            tree._nodes[node.node_id] = node
        return tree

    # -- writing --------------------------------------------------------------------------------

    def add_agent(self, agent: str) -> str:
        """Create the agent's branch at the root (idempotent); returns the branch name."""
        branch = self.branch(agent)
        with self._lock:
            if not self._ref_exists(f'refs/heads/{branch}'):
                self._git('update-ref', f'refs/heads/{branch}', self.root)
        return branch

    def commit_idea(self, agent: str, code: str, hypothesis: str, result: NodeResult | None, *,
                    round: int, revises: str | None = None, reused_from: str | None = None,
                    t_start: float = 0.0, t_end: float = 0.0, tokens_in: int = 0, tokens_out: int = 0,
                    regime: str = 'heuristic_code', backend: str = '', wall_time: float | None = None
                    ) -> TreeNode:
        """One idea as one commit on the agent's branch (a merge with the peer's node when it reuses)."""
        hypothesis = ' '.join(hypothesis.split()) or '(no hypothesis given)'
        with self._lock:
            branch = self.add_agent(agent)
            head = self._git('rev-parse', f'refs/heads/{branch}').strip()
            parents = [head]
            if reused_from and reused_from != head:
                parents.append(reused_from)
            doc = self._hypothesis_md(agent, round, hypothesis, result, revises, reused_from, regime,
                                      backend, tokens_in, tokens_out)
            tree_sha = self._tree({'policy.py': code, 'HYPOTHESIS.md': doc})
            message = self._message(agent, round, hypothesis, result, revises, reused_from, tokens_in,
                                    tokens_out)
            args = ['commit-tree', tree_sha, '-F', '-']
            for p in parents:
                args[2:2] = ['-p', p]
            sha = self._git(*args, stdin=message, date=wall_time).strip()
            self._git('update-ref', f'refs/heads/{branch}', sha, head)
            node = TreeNode(node_id=sha, agent=agent, round=round, hypothesis=hypothesis, parent=head,
                            reused_from=reused_from, revises=revises, result=result, t_start=t_start,
                            t_end=t_end, tokens_in=tokens_in, tokens_out=tokens_out, regime=regime,
                            backend=backend, code_sha256=code_sha256(code))
            self._write_note(node)
            return node

    def prune(self, node_id: str, reason: str) -> TreeNode:
        """Mark a dead end: an annotated tag pruned/<agent>/<sha7> with the reason, and the note updated."""
        with self._lock:
            node = self._nodes[node_id]
            if node.pruned:
                return node
            reason = ' '.join(reason.split()) or 'no reason given'
            self._git('tag', '-a', f'pruned/{node.agent}/{node_id[:7]}', '-m', f'pruned: {reason}', node_id)
            node = node.model_copy(update={'pruned': reason})
            self._write_note(node)
            return node

    def set_result(self, node_id: str, result: NodeResult, t_end: float | None = None) -> TreeNode:
        """The result of a node tested after it was committed (an agent's tools: propose, then run_trial);
        kept in its note, which is what `open` reads back."""
        with self._lock:
            update = {'result': result} if t_end is None else {'result': result, 't_end': t_end}
            node = self._nodes[node_id].model_copy(update=update)
            self._write_note(node)
            return node

    # -- reading --------------------------------------------------------------------------------

    @staticmethod
    def branch(agent: str) -> str:
        return f'agent/{agent}'

    def nodes(self, agent: str | None = None) -> list[TreeNode]:
        with self._lock:
            found = [n for n in self._nodes.values() if agent is None or n.agent == agent]
        return sorted(found, key=lambda n: (n.t_end, n.agent, n.round))

    def node(self, node_id: str) -> TreeNode:
        with self._lock:
            return self._nodes[node_id]

    def code(self, node_id: str) -> str:
        with self._lock:
            return self._git('show', f'{node_id}:policy.py')

    def best(self, agent: str | None = None, include_pruned: bool = False) -> TreeNode | None:
        """The highest-scoring evaluated node (of one agent, or of all); earliest wins ties."""
        candidates = [n for n in self.nodes(agent) if n.score >= 0 and (include_pruned or not n.pruned)]
        if not candidates:
            return None
        return max(candidates, key=lambda n: (n.score, -n.t_end))

    def head(self, agent: str) -> str:
        with self._lock:
            return self._git('rev-parse', f'refs/heads/{self.branch(agent)}').strip()

    def agents(self) -> list[str]:
        with self._lock:
            refs = self._git('for-each-ref', '--format=%(refname:strip=3)', 'refs/heads/agent/')
        return sorted(r for r in refs.split('\n') if r)

    def log_graph(self) -> str:
        """`git log --graph --all` with tags and the short messages: the story of the run."""
        with self._lock:
            return self._git('log', '--graph', '--decorate', '--date-order', '--exclude=refs/notes/*',
                             '--all', '--format=%h%d %s%n%b')

    def export_json(self) -> list[dict]:
        return [n.model_dump() for n in self.nodes()]

    # -- internals ------------------------------------------------------------------------------

    def _write_note(self, node: TreeNode) -> None:
        self._git('notes', '--ref', NOTES_REF, 'add', '-f', '-F', '-', node.node_id,
                  stdin=node.model_dump_json(indent=1))
        # Keep the notes ref one commit deep, so `git log --all` shows one notes commit, not one per write.
        notes_tree = self._git('rev-parse', f'{NOTES_REF}^{{tree}}').strip()
        squashed = self._git('commit-tree', notes_tree, '-m', 'enpire: every node as JSON (notes)').strip()
        self._git('update-ref', NOTES_REF, squashed)
        self._nodes[node.node_id] = node

    def _tree(self, files: dict[str, str]) -> str:
        entries = []
        for name, content in sorted(files.items()):
            blob = self._git('hash-object', '-w', '--stdin', stdin=content).strip()
            entries.append(f'100644 blob {blob}\t{name}')
        return self._git('mktree', stdin='\n'.join(entries) + '\n').strip()

    def _ref_exists(self, ref: str) -> bool:
        return subprocess.run(['git', '--git-dir', str(self.path), 'show-ref', '--verify', '--quiet', ref],
                              env=self._env(None)).returncode == 0

    def _env(self, date: float | None) -> dict:
        # git gets agent-written content and messages: an allow-listed environment, no inherited secrets.
        env = allowlisted_env(**_GIT_ENV)
        if date is not None:
            stamp = f'@{int(date)} +0000'
            env['GIT_AUTHOR_DATE'] = env['GIT_COMMITTER_DATE'] = stamp
        return env

    def _git(self, *args: str, stdin: str | None = None, cwd_is_repo: bool = True,
             date: float | None = None) -> str:
        cmd = ['git', '--git-dir', str(self.path), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              env=self._env(date if date is not None else time.time()))
        if proc.returncode != 0:
            raise GitError(f'git {" ".join(args[:3])} failed ({proc.returncode}): {proc.stderr.strip()}')
        return proc.stdout

    def _message(self, agent, round, hypothesis, result, revises, reused_from, tokens_in, tokens_out) -> str:
        if result is None:
            tag = 'proposed'      # committed before its trials (an agent's tools): the result is in the note
        elif result.status == 'evaluated':
            tag = f'pass@{result.k} {result.pass_at_k:.2f}, pass@1 {result.pass_at_1:.2f}'
        else:
            tag = result.status
        subject = f'{agent} #{round} ({tag}): {hypothesis}'
        if len(subject) > 100:
            subject = subject[:97] + '...'
        measured = result.line() if result else f'measured after this commit, in the note ({NOTES_REF})'
        lines = [subject, '', f'Hypothesis: {hypothesis}', f'Result: {measured}']
        if result and result.failure_reasons and result.status == 'evaluated':
            lines.append(f'Failures: {"; ".join(result.failure_reasons[:3])}')
        lines += ['', f'Agent: {agent}', f'Round: {round}', f'Tokens: {tokens_in} in, {tokens_out} out']
        if revises:
            lines.append(f'Revises: {revises}')
        if reused_from:
            owner = self._nodes[reused_from].agent if reused_from in self._nodes else '?'
            lines.append(f'Reused-From: {reused_from} ({owner})')
        return '\n'.join(lines) + '\n'

    def _hypothesis_md(self, agent, round, hypothesis, result, revises, reused_from, regime, backend,
                       tokens_in, tokens_out) -> str:
        lines = [f'# {agent}, idea {round}', '', hypothesis, '', f'- regime: {regime}',
                 f'- backend: {backend or "?"}', f'- tokens: {tokens_in} in, {tokens_out} out',
                 f'- revises: {revises or "the empty policy"}']
        if reused_from:
            lines.append(f'- reused from: {reused_from}')
        lines += ['', '## Result (improvement seeds)', '', result.line() if result else 'not evaluated']
        if result and result.failure_reasons:
            lines += ['', '## Failure reasons', ''] + [f'- {r}' for r in result.failure_reasons]
        return '\n'.join(lines) + '\n'
