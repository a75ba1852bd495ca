"""The evidence benchmarks: each is a module run as ``python -m benchmarks.NAME`` from the
repository root, with ``--help`` listing its flags. Every one has ``--out PATH`` (its JSON),
``--smoke`` (the tiny preset in seconds, checking its own output; CI runs these) and
``--threads N`` (default 1), from :mod:`benchmarks.common`, which also holds the shared
statistics (one t-interval, from :mod:`dus_agents.evaluation.stats`), logging and JSON writer.
Times are for 2 CPU cores, one thread per process.

* ``overhead``: ``DUSEnv.step`` against a bare PyTorch loop over the same engine, and the share
  of episode time the validation reward costs (whole episodes alternated, and episodes
  advanced together a step at a time). ``python -m benchmarks.overhead``: about 70 s.
* ``imbalance``: does a preset show the modality-imbalance gap (weak-modality probe accuracy,
  joint host vs trained alone), does a fixed skew of the batch sizes move it, and the weak
  modality's learning curves (docs/synthetic_preset.md). ``python -m benchmarks.imbalance``:
  about a minute with 5 seeds.
* ``levers``: validation-only screens of design levers (loss reduction, heuristic settings,
  fixed and scheduled skews, saved PPO policies) against uniform, paired by seed.
  ``python -m benchmarks.levers``: a few minutes per screen of 20 seeds.
* ``ppo_rewards``: PPO trained on the discrepancy and hybrid rewards, then screened with
  ``levers``. ``python -m benchmarks.ppo_rewards``: about 10 minutes per reward.
* ``quality``: the dataset x host x policy sweep on test (synthetic preset, mfeat view pairs,
  the three-view set), with the mfeat view strengths, PPO training and its transfer, and the
  imbalance gap of every cell. ``python -m benchmarks.quality``: most of an hour; resumable.
* ``cost``: PPO time to beat uniform, env steps per second with 1 vs 2 envs, memory over 100
  consecutive runs, bare env scaling over 1 vs 2 processes. ``python -m benchmarks.cost``:
  about 15 minutes (less with ``--ppo-run``, which reuses quality's PPO run).
* ``ray_scaling``: an evaluation sweep on the local backend vs Ray, env steps per second with
  1 vs 2 Ray actors (docs/scaling.md; needs ``pip install 'dus-env[ray]'``).
  ``python -m benchmarks.ray_scaling``: about a minute on the tiny preset.
* ``paired_reward``: the paired reward's noise against val_delta's over seeds, and the cost of
  its reference run (cold vs warm). ``python -m benchmarks.paired_reward``: about 6 minutes.
* ``oracle``: per held-out task, the best open-loop schedule (piecewise-constant per-modality
  multipliers) an Optuna search finds on validation seeds, reported on test seeds.
  ``python -m benchmarks.oracle``: about 30 minutes for its 19 default tasks at the default
  30 trials (about 25 at run_all.sh's 24).
  ``--family heuristic``: DUS-H's settings tuned per task against DUS-H instead (the headroom
  above DUS-H): about 55 minutes at 24 trials x 8 seeds on one core.
* ``generalization``: held-out tasks x uniform, DUS-H, PPO trained on ``default``, the
  pretrained generalist and the oracle; paired CIs per task and across tasks. Resumable
  (``--resume``). ``python -m benchmarks.generalization``: about 35 minutes.
* ``select_generalist``: candidate DUS-v1 policies scored on a suite's validation slice
  (training tasks x validation seeds; never held out), paired by episode; picks the best.
  ``python -m benchmarks.select_generalist``: a few minutes per candidate.
* ``fashion``: two-view Fashion-MNIST: noise screen, imbalance, lever, policies on three hosts,
  episode cost. ``python -m benchmarks.fashion``: about 40 minutes.
* ``fashion_weights``: whether the trainer's loss weights open the weak-view gap on
  Fashion-MNIST (validation only). ``python -m benchmarks.fashion_weights``: about 5 minutes.
* ``make_results``: renders docs/RESULTS.md from the JSON of quality, levers, ppo_rewards,
  cost and overhead (``python -m benchmarks.make_results``: seconds); with ``--update``, only
  the DUS-v1 sections (``benchmarks.results_sections``) and docs/PRETRAINED.md.
* ``machine``: prints the machine description every benchmark records.

* ``fit_heuristic``: DUS-H's four settings fit on a suite's training tasks by a seeded Optuna
  search against DUS-H (training seeds only), saved as a policy artefact.

``bash benchmarks/run_all.sh`` runs them all in order and regenerates docs/RESULTS.md (about
1.5 hours for the DUS-v0 evidence, about 4 hours more for DUS-v1). benchmarks/README.md lists
the JSON each one writes, file by file and key by key.
"""
