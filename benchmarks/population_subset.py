"""How much the 'population' BN statistics of a trained workdir depend on how many training
batches they pool (issue 8: ``config.population_batches``).

    python benchmarks/population_subset.py --workdir=runs/synth3a-quick --batches=1,2,4,all

For every model of the workdir and every run (fold), the newest checkpoint's weights are
evaluated on the held-out subject (and the validation subjects, when the run has them) with
population statistics pooled over K shuffled training batches of the experiment's batch size,
for each K of ``--batches`` ('all': every training video once), each K with ``--draws`` random
subsets. Prints the joint accuracy (mean over runs; over draws: mean and range), so the cost
choice of the quick preset (4 batches) can be judged against the full pass on the same weights.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from mstrnn_jax import checkpoint, evaluate, train
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.data import pipeline
from mstrnn_jax.model_records import model_config_from_record
from mstrnn_jax.plan import build_tables, plan


def run_slice(tree, r: int):
  """Run ``r`` of a stacked pytree (numpy leaves) as device arrays."""
  return jax.tree.map(lambda a: jnp.asarray(a[r]), tree)


def model_table(model, loaded, p, videos, labels, ks, draws) -> list[str]:
  """Markdown rows of ``model``: joint accuracy per set and K (mean over runs)."""
  c = p.config
  fns = train.model_fns(model_config_from_record(p.model_records[model]))
  tab = build_tables(p, loaded.runs)
  sets = [('test', tab.test_idx, tab.test_mask)]
  if tab.val_idx is not None:
    sets.append(('validation', tab.val_idx, tab.val_mask))

  @jax.jit
  def flags_of(params, stats, videos, labels, rows, taus):
    x = pipeline.to_float(pipeline.center_crop(videos[rows], fns.input_size))
    logits, _ = fns.apply(params, stats, x, taus, False)
    return evaluate.correct_flags(logits, labels[rows], fns.heads, c.voting_steps, c.vote_rule)

  rows = []
  for k in ks:
    population = jax.jit(
      lambda params, stats, videos, train_idx, n_train, taus, key, k=k: train.population_statistics(
        fns, params, stats, videos, train_idx, n_train, taus, key, 0, c.batch_size, k
      )
    )
    n_draws = 1 if k is None else draws
    acc = {name: np.zeros((n_draws, len(loaded.runs))) for name, _, _ in sets}
    for d in range(n_draws):
      for r in range(len(loaded.runs)):
        params, taus = run_slice(loaded.params, r), jnp.asarray(tab.taus[r])
        stats = population(
          params,
          run_slice(loaded.running_stats, r),
          videos,
          jnp.asarray(tab.train_idx[r]),
          jnp.asarray(tab.n_train[r]),
          taus,
          jax.random.key_data(jax.random.key(1000 * d + r)),
        )
        for name, idx, mask in sets:
          flags = np.asarray(flags_of(params, stats, videos, labels, jnp.asarray(idx[r]), taus))
          acc[name][d, r] = evaluate.accuracies(flags[None], np.asarray(mask[r])[None])[0, -1]
    for name, a in acc.items():
      per_draw = a.mean(axis=1)
      spread = '' if n_draws == 1 else f' [{per_draw.min():.2f}-{per_draw.max():.2f}]'
      pooled = 'all' if k is None else str(k * c.batch_size)
      rows.append(f'| {model} | {name} | {k or "all"} | {pooled} | {per_draw.mean():.2f}{spread} |')
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help='A finished run of experiments/run.py.')
  parser.add_argument('--batches', default='1,2,4,all', help="Comma-separated K, or 'all'.")
  parser.add_argument('--draws', type=int, default=3, help='Random subsets per K (K < all).')
  args = parser.parse_args()
  ks = [None if k == 'all' else int(k) for k in args.batches.split(',')]

  p = plan(ec.from_dict(checkpoint.load_run(args.workdir).experiment['experiment']))
  videos = jnp.asarray(p.dataset.videos)
  labels = jnp.asarray(train.stack_labels(p.dataset.labels, p.dataset.heads))
  print(
    f'# {args.workdir}: {p.config.dataset}, batch {p.config.batch_size}; newest checkpoint; '
    'joint accuracy (%), mean over runs [min-max over draws]'
  )
  print('| model | set | K batches | videos pooled | accuracy |\n|---|---|---|---|---|')
  for model in p.models:
    loaded = checkpoint.load_run(args.workdir, model)
    print('\n'.join(model_table(model, loaded, p, videos, labels, ks, args.draws)), flush=True)


if __name__ == '__main__':
  main()
