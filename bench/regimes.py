"""Compare the policy-improvement regimes on Push-T with a small budget each; prints ONE JSON line.

    python bench/regimes.py [--eval-seeds 1000:1010] [--attempts 2] [--demos 48] [--ppo-steps 30000]
                            [--regimes behaviour_cloning,offline_rl] [--feature-map pusht_v2] [--bag-dir D]

Every regime's policy is judged as the trial server judges it, without the ROS graph:
`enpire_agents.local_eval.evaluate(mode='trial')` runs the policy file in the real sandbox
(`enpire_rollout.sandbox.PolicyRunner`, the trial server's limits), hands it the frames of the sim cell's
three cameras, passes its commands through the safety filter into the simulator, and decides each
attempt with the EN verifier core (`enpire_env.verification.Verifier` on the cameras' frames; the sim's
coverage is never read). pass@k: k attempts in one rollout without reset, the failure report given to
the policy between attempts; held-out seeds. Per regime: pass@1 and pass@k with Wilson 95% intervals,
mean verifier score, trials used to produce the policy (recorded demonstration trials / training
episodes / search trials), wall time to produce it (data + training + search) and to judge it, missed
step deadlines. The demonstration bags and the tool-calling search go through the same trial loop.

- heuristic_code: the offline backend's default strategy genome (the demonstrator; reference only)
- behaviour_cloning: MLP on the demonstrator's successful trial bags (recorded by regimes.sim_bags)
- offline_rl: AWR on the same bags plus the bags of a weaker policy (all trials, verifier's reward)
- online_rl: SB3 PPO on enpire/PushT-v0 for --ppo-steps env steps
- tool_calling: ToolCallingBackend revised for --tool-rounds on search seeds, best kept
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(max(0.0, c - h), 3), round(min(1.0, c + h), 3)]


def seeds(text: str) -> list[int]:
    a, b = text.split(':')
    return list(range(int(a), int(b)))


def main(argv=None) -> int:
    t_bench = time.monotonic()
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--eval-seeds', default='1000:1010')
    ap.add_argument('--attempts', type=int, default=2)
    ap.add_argument('--steps-per-attempt', type=int, default=300)
    ap.add_argument('--demos', type=int, default=48, help='demonstrator trials recorded as bags')
    ap.add_argument('--weak', type=int, default=6, help='extra trials of a weaker policy for offline RL')
    ap.add_argument('--ppo-steps', type=int, default=30000)
    ap.add_argument('--ppo-seconds', type=float, default=240.0)
    ap.add_argument('--tool-rounds', type=int, default=3)
    ap.add_argument('--search-seeds', default='500:506')
    ap.add_argument('--train-seconds', type=float, default=45.0)
    ap.add_argument('--procs', type=int, default=1, help='trials judged in parallel (the machine is shared)')
    ap.add_argument(
        '--regimes',
        default='heuristic_code,behaviour_cloning,offline_rl,online_rl,tool_calling',
        help='comma-separated subset to run',
    )
    ap.add_argument(
        '--feature-map',
        default='pusht_v2',
        help='BC/AWR input (learned_policy.FEATURE_MAPS): pusht_v2 (with a one-step history) or pusht_v1',
    )
    ap.add_argument(
        '--bag-dir',
        default='',
        help='keep the recorded bags here and reuse them when present (iterating on training only)',
    )
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from enpire_task_pusht import strategies as S

    from enpire_agents.backends.base import ImprovementRequest
    from enpire_agents.local_eval import evaluate, summarise
    from enpire_agents.regimes import bc, dataset, offline_rl, online_rl, sim_bags, tool_calling
    from enpire_agents.regimes.regime_backends import ToolCallingBackend

    eval_seeds = seeds(args.eval_seeds)
    wanted = args.regimes.split(',')
    work = Path(tempfile.mkdtemp(prefix='enpire_regimes_', dir='/tmp'))
    work.chmod(0o755)  # the sandboxed policy runs as nobody and loads its weights from here
    bags = Path(args.bag_dir) if args.bag_dir else work / 'bags'
    reuse = bool(args.bag_dir) and (bags / 'demos').exists()
    trial = dict(attempts=args.attempts, steps_per_attempt=args.steps_per_attempt)
    out: dict[str, dict] = {}

    def judge(name, code, trials_used, wall_s, **extra):
        res = evaluate(code, eval_seeds, mode='trial', procs=args.procs, **trial)
        n, k1, kk = res.n, res.successes_at(1), res.successes_at(args.attempts)
        out[name] = {
            'pass_at_1': round(k1 / n, 3),
            'pass_at_1_ci95': wilson(k1, n),
            'pass_at_k': round(kk / n, 3),
            'pass_at_k_ci95': wilson(kk, n),
            'mean_score': round(res.mean_score, 3),
            'trials_used': trials_used,
            'wall_s': round(wall_s, 1),
            'eval_s': round(res.seconds, 1),
            'missed_deadlines': sum(r.missed_deadlines for r in res.records),
            'failure_reasons': res.failure_reasons()[:3],
            **extra,
        }
        print(f'[regimes] {name}: {json.dumps(out[name])}', file=sys.stderr, flush=True)

    def skip(name, why, trials_used, wall_s):
        out[name] = {'skipped': why, 'trials_used': trials_used, 'wall_s': round(wall_s, 1)}
        print(f'[regimes] {name}: {json.dumps(out[name])}', file=sys.stderr, flush=True)

    expert = S.compose(S.default_genome().full())
    try:
        if 'heuristic_code' in wanted:
            judge('heuristic_code', expert, 0, 0.0, note='the demonstrator (offline backend default genome)')
        t0 = time.monotonic()
        demos = []
        if {'behaviour_cloning', 'offline_rl'} & set(wanted):
            if reuse:
                demos = dataset.build_dataset(bags / 'demos', only_success=False).trials
            else:
                demos = sim_bags.record_rollouts(expert, range(args.demos), bags / 'demos', **trial)
        t_demos = time.monotonic() - t0
        if 'behaviour_cloning' in wanted:
            t0 = time.monotonic()
            ds = dataset.build_dataset(bags / 'demos', only_success=True, feature_map=args.feature_map)
            if len(ds) == 0:
                skip('behaviour_cloning', 'no successful demonstration to clone', len(demos), t_demos)
            else:
                res = bc.train_bc(ds, work / 'w', epochs=300, max_seconds=args.train_seconds)
                judge(
                    'behaviour_cloning',
                    bc.learned_policy_source(res.path, res.sha256),
                    len(demos),
                    t_demos + time.monotonic() - t0,
                    samples=res.samples,
                    demo_trials=len(demos),
                    demo_successes=sum(d.success for d in demos),
                    final_loss=round(res.final_loss, 4),
                    feature_map=args.feature_map,
                )
        if 'offline_rl' in wanted:
            t0 = time.monotonic()
            weak = tool_calling.tool_policy_source('pose')
            if reuse and (bags / 'weak').exists():
                weak_runs = dataset.build_dataset(bags / 'weak', only_success=False).trials
            else:
                weak_runs = sim_bags.record_rollouts(
                    weak, range(100, 100 + args.weak), bags / 'weak', **trial
                )
            ds = dataset.build_dataset(bags, only_success=False, feature_map=args.feature_map)
            res = offline_rl.train_awr(ds, work / 'w', epochs=300, max_seconds=args.train_seconds)
            judge(
                'offline_rl',
                bc.learned_policy_source(res.path, res.sha256, 'offline_rl'),
                len(demos) + len(weak_runs),
                t_demos + time.monotonic() - t0,
                samples=res.samples,
                successful_trials=res.info.get('successful_trials'),
                weight_mean=round(res.info['weight_mean'], 3),
                final_loss=round(res.final_loss, 4),
                feature_map=args.feature_map,
            )
        if 'online_rl' in wanted:
            t0 = time.monotonic()
            res, stats = online_rl.train_ppo(
                work / 'w', timesteps=args.ppo_steps, max_seconds=args.ppo_seconds
            )
            judge(
                'online_rl',
                bc.learned_policy_source(res.path, res.sha256, 'online_rl'),
                stats['episodes'],
                time.monotonic() - t0,
                algorithm='sb3_ppo',
                env_steps=stats['steps'],
                train_successes=stats['successes'],
            )
        if 'tool_calling' in wanted:
            t0 = time.monotonic()
            backend = ToolCallingBackend(seed=0)
            best, best_code, history, used = None, None, [], 0
            search = seeds(args.search_seeds)
            for rnd in range(args.tool_rounds):
                p = backend.propose(
                    ImprovementRequest(
                        task='pusht',
                        contract='',
                        agent_id='bench',
                        round=rnd,
                        best_code=best_code,
                        best=best,
                        history=history[-3:],
                    )
                )
                r = evaluate(p.code, search, mode='trial', procs=args.procs, **trial)
                used += r.n
                s = summarise(f'r{rnd}', p.hypothesis, r)
                history.append(s)
                key = lambda x: (x.successes_at_1 + x.successes_at_k, x.mean_score)  # noqa: E731
                if best is None or key(s) > key(best):
                    best, best_code = s, p.code
            judge(
                'tool_calling',
                best_code,
                used,
                time.monotonic() - t0,
                rounds=args.tool_rounds,
                plan=tool_calling.spec_from_code(best_code)[0],
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        json.dumps(
            {
                'bench': 'regimes',
                'task': 'pusht',
                'judge': 'trial loop without ROS: sandboxed policy, safety filter, verifier on 3 sim cameras',
                'attempts': args.attempts,
                'steps_per_attempt': args.steps_per_attempt,
                'eval_seeds': args.eval_seeds,
                'wall_s': round(time.monotonic() - t_bench, 1),
                'regimes': out,
            }
        )
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
