"""Fidelity probes of issue 8 (docs/fidelity.md): evaluation statistics, validation subjects,
LRCN gradients on long videos.  (The run engine now has ``config.eval_stats`` and
``config.validation_subjects`` itself; this probe adds gradient statistics and init variants.)  One compiled program per model trains every selected fold;
each fold also holds out one *validation* subject taken from its training subjects
(deterministically from --seed), so settings can be compared without looking at test subjects.

    python benchmarks/fidelity_probe.py --model=mstrnn --subjects=0,4,8 --epochs=40 --out=/tmp/a.json
    python benchmarks/fidelity_probe.py --model=lrcn --dataset_kwargs=frames_per_primitive=37 \
        --epochs=10 --subjects=0 --grad_stats --out=/tmp/lrcn.json

Per epoch it records, per fold: training loss and joint accuracy, and the joint accuracy of
the test subject and of the validation subject under every evaluation-statistics mode
(``train.EVAL_STATS``); with --grad_stats also gradient statistics of one fixed training batch
(global norm, largest element, share of elements beyond the clip value, per-layer norms).  The
summary prints, per mode, the mean over folds of the test accuracy at the best test epoch (the
paper's protocol), at the epoch chosen on the validation subject, and at the last epoch.
"""

import json
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mstrnn_jax import evaluate, layers, model_records, train
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.data import pipeline

_MODEL = flags.DEFINE_string('model', 'mstrnn', 'mstrnn | lrcn | mstnn.')
_DATASET = flags.DEFINE_string('dataset', 'synth3a', 'Synthetic dataset.')
_KWARGS = flags.DEFINE_list('dataset_kwargs', [], 'Generator arguments, name=int.')
_SUBJECTS = flags.DEFINE_list('subjects', ['0', '4', '8'], 'Test subjects (folds) to run.')
_EPOCHS = flags.DEFINE_integer('epochs', 40, 'Epochs.')
_TAU2 = flags.DEFINE_list('tau2', [], "tau2 values (runs = tau2 x folds; default: the model's).")
_LR = flags.DEFINE_list('lr', [], 'Learning rates (default: the quick preset).')
_LR_BOUNDS = flags.DEFINE_list('lr_boundaries', None, 'Epoch boundaries (default: preset).')
_CLIP = flags.DEFINE_float('clip', None, 'Element-wise gradient clip (default: preset, 12).')
_WIDTH = flags.DEFINE_float('width_scale', None, 'Model width (default: preset).')
_OVERRIDES = flags.DEFINE_list('model_overrides', [], 'derive_config overrides, name=value.')
_FORGET = flags.DEFINE_string(
  'forget_bias',
  None,
  'LSTM forget-gate bias at init: a number '
  '(default 1) or "chrono" (Tallec & Ollivier 2018, spread to T_max).',
)
_GRADS = flags.DEFINE_bool('grad_stats', False, 'Record gradient statistics per epoch.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed (weights, shuffling, validation subjects).')
_OUT = flags.DEFINE_string('out', None, 'JSON output path.')


def _value(text):
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return text


def validation_subject(test_subject: int, num_subjects: int, seed: int) -> int:
  """One training subject of the fold, drawn from the seed and the test subject."""
  others = [s for s in range(num_subjects) if s != test_subject]
  return others[np.random.default_rng([seed, test_subject]).integers(len(others))]


def set_forget_bias(value: str, t_max: int) -> None:
  """Probe only: patches layers.init_lstm's forget-gate bias (a number, or 'chrono':
  b_f = log(1 + (T_max - 2) q) at evenly spaced quantiles q, b_i = -b_f, Tallec & Ollivier)."""
  plain = layers.init_lstm

  def init_lstm(in_features, units):
    p = plain(in_features, units)
    if value == 'chrono':
      b_f = jnp.log1p((t_max - 2) * (jnp.arange(units) + 0.5) / units)
      p['b'] = p['b'].at[units : 2 * units].set(b_f).at[:units].set(-b_f)
    else:
      p['b'] = p['b'].at[units : 2 * units].set(float(value))
    return p

  layers.init_lstm = init_lstm


def grad_statistics(fns, tx, exp, clip):
  """Jitted: per-run gradient statistics of one batch (a dict of floats)."""

  def one(state, videos, labels, taus):
    x = pipeline.to_float(pipeline.center_crop(videos, fns.input_size))

    def loss_fn(params):
      logits, _ = fns.apply(params, state.batch_stats, x, taus, True)
      return train.voting_cross_entropy(logits, labels, fns.heads, exp.voting_steps)

    grads = jax.grad(loss_fn)(state.params)
    leaves = jax.tree.leaves(grads)
    flat = jnp.concatenate([jnp.ravel(g) for g in leaves])
    per_layer = {k: optax.global_norm(v) for k, v in grads.items()}
    return {
      'global_norm': optax.global_norm(grads),
      'max_abs': jnp.max(jnp.abs(flat)),
      'clipped_share': jnp.mean(jnp.abs(flat) > clip),
      'per_layer': per_layer,
    }

  return jax.jit(jax.vmap(one, in_axes=(0, None, None, 0)))


def main(argv):
  del argv
  kwargs = {k: _value(v) for k, v in (a.split('=') for a in _KWARGS.value)}
  exp = ec.get_config('quick', _DATASET.value)
  optim = ec.optim_config(exp)
  if _LR.value:
    bounds = tuple(int(b) for b in (_LR_BOUNDS.value or ()))
    optim = train.OptimConfig(lr_values=tuple(float(v) for v in _LR.value), lr_boundaries=bounds)
  if _CLIP.value is not None:
    optim = train.OptimConfig(
      lr_values=optim.lr_values, lr_boundaries=optim.lr_boundaries, clip=_CLIP.value
    )
  overrides = tuple((k, _value(v)) for k, v in (a.split('=') for a in _OVERRIDES.value))
  width = exp.width_scale if _WIDTH.value is None else _WIDTH.value
  t0 = time.time()
  ds = pipeline.load_dataset(_DATASET.value, **kwargs)
  heads = ds.heads
  cfg = model_records.model_config_from_record(
    model_records.model_record(
      _MODEL.value, _DATASET.value, ds.crop_size, heads, ds.videos.shape[1], width, dict(overrides)
    )
  )
  if _FORGET.value is not None:
    set_forget_bias(_FORGET.value, ds.videos.shape[1])
  fns = train.model_fns(cfg)
  taus = [tuple(cfg.taus)]
  if _TAU2.value:
    taus = [(cfg.taus[0], float(t)) for t in _TAU2.value]
  folds = [int(s) for s in _SUBJECTS.value]
  subjects = [s for _ in taus for s in folds]
  run_taus = [t for t in taus for _ in folds]
  vals = [validation_subject(s, ds.num_subjects, _SEED.value) for s in subjects]
  idx = np.arange(len(ds))
  trains = [idx[(ds.subjects != s) & (ds.subjects != v)] for s, v in zip(subjects, vals)]
  n_tr = max(map(len, trains))
  steps = min(map(len, trains)) // exp.batch_size

  def tables(held_out):
    rows = [idx[ds.subjects == s] for s in held_out]
    n_te = max(map(len, rows))
    pad = lambda a, n: np.pad(np.asarray(a, np.int32), (0, n - len(a)))  # noqa: E731
    taus = np.asarray(run_taus, np.float32).reshape(len(held_out), -1)
    return train.RunTables(
      train_idx=jnp.asarray(np.stack([pad(t, n_tr) for t in trains])),
      n_train=jnp.asarray([len(t) for t in trains], jnp.int32),
      test_idx=jnp.asarray(np.stack([pad(r, n_te) for r in rows])),
      test_mask=jnp.asarray(np.stack([np.arange(n_te) < len(r) for r in rows])),
      taus=jnp.asarray(taus),
    ), np.stack([np.arange(n_te) < len(r) for r in rows])

  test_tab, test_mask = tables(subjects)
  val_tab, val_mask = tables(vals)
  programs = train.make_programs(
    fns,
    optim,
    batch_size=exp.batch_size,
    steps_per_epoch=steps,
    voting_steps=exp.voting_steps,
    eval_batch_size=32,
    eval_stats=train.EVAL_STATS,
  )
  evaluate_stats = lambda st, tab: programs.evaluate(st, videos, labels, tab).test  # noqa
  videos = jnp.asarray(ds.videos)
  labels = jnp.asarray(train.stack_labels(ds.labels, heads))
  keys = jnp.asarray(
    np.stack(
      [jax.random.key_data(jax.random.fold_in(jax.random.key(_SEED.value), s)) for s in folds]
      * len(taus)
    )
  )
  states = programs.init(keys)
  gstats = grad_statistics(fns, train.make_optimizer(optim, steps), exp, optim.clip)
  grad_rows = jnp.asarray(np.stack([t[: exp.batch_size] for t in trains]))
  hist = {'train_loss': [], 'train_acc': [], 'test': [], 'val': [], 'grads': [], 'seconds': []}
  print(
    f'{_MODEL.value} on {_DATASET.value} {kwargs}: videos {ds.videos.shape}, folds {subjects}'
    f' (validation subjects {vals}), {steps} steps x batch {exp.batch_size}, optim {optim}, '
    f'width {width}, overrides {overrides}, forget bias {_FORGET.value or 1}; '
    f'data {time.time() - t0:.1f}s',
    flush=True,
  )
  for epoch in range(_EPOCHS.value):
    t1 = time.time()
    states, m = programs.train_epoch(states, videos, labels, test_tab)
    acc = {}
    for name, tab, mask in (('test', test_tab, test_mask), ('val', val_tab, val_mask)):
      flags_ = np.asarray(evaluate_stats(states, tab))
      acc[name] = np.stack(
        [evaluate.accuracies(flags_[:, k], mask)[:, -1] for k in range(len(train.EVAL_STATS))], 1
      )  # [folds, modes]
      hist[name].append(acc[name].tolist())
    m = jax.device_get(m)
    hist['train_loss'].append(np.asarray(m.loss).mean(1).tolist())
    tr = 100.0 * np.asarray(m.correct)[..., -1].sum(1) / np.asarray(m.count).sum(1)
    hist['train_acc'].append(tr.tolist())
    line = ''
    if _GRADS.value:
      g = jax.device_get(gstats(states, videos[grad_rows[0]], labels[grad_rows[0]], test_tab.taus))
      g = jax.tree.map(lambda x: np.asarray(x).tolist(), g)
      hist['grads'].append(g)
      line = (
        f' | grad norm {np.mean(g["global_norm"]):.3g} max {np.max(g["max_abs"]):.3g} '
        f'clipped {np.mean(g["clipped_share"]):.2%}'
      )
    hist['seconds'].append(time.time() - t1)
    print(
      f'epoch {epoch + 1}: loss {np.mean(hist["train_loss"][-1]):.3f} train '
      f'{tr.mean():.1f} | test '
      + ' '.join(f'{k} {v:.1f}' for k, v in zip(train.EVAL_STATS, acc['test'].mean(0)))
      + ' | val '
      + ' '.join(f'{k} {v:.1f}' for k, v in zip(train.EVAL_STATS, acc['val'].mean(0)))
      + f'{line} | {time.time() - t1:.1f}s',
      flush=True,
    )
  test, val = np.asarray(hist['test']), np.asarray(hist['val'])  # [epochs, folds, modes]
  summary = {}
  for g, tau in enumerate(taus):
    runs = np.arange(g * len(folds), (g + 1) * len(folds))
    for k, mode in enumerate(train.EVAL_STATS):
      best = test[:, runs, k].max(0)
      chosen = val[:, runs, k].argmax(0)
      at_val = test[chosen, runs, k]
      key = f'{mode} taus {tau}'
      summary[key] = {
        'best_test_epoch': evaluate.mean_se(best),
        'val_selected': evaluate.mean_se(at_val),
        'last': evaluate.mean_se(test[-1, runs, k]),
        'val_best': evaluate.mean_se(val[:, runs, k].max(0)),
        'val_last': evaluate.mean_se(val[-1, runs, k]),
        'train_last': evaluate.mean_se(np.asarray(hist['train_acc'])[-1, runs]),
        'val_selected_epochs': (chosen + 1).tolist(),
      }
      print(
        f'{key}: test at best test epoch {evaluate.fmt(*summary[key]["best_test_epoch"])}'
        f', at validation-chosen epoch {evaluate.fmt(*summary[key]["val_selected"])}, last '
        f'{evaluate.fmt(*summary[key]["last"])}; validation best '
        f'{evaluate.fmt(*summary[key]["val_best"])}, last '
        f'{evaluate.fmt(*summary[key]["val_last"])}; train last '
        f'{evaluate.fmt(*summary[key]["train_last"])}'
      )
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(
        {
          'argv': sys.argv,
          'kwargs': kwargs,
          'subjects': subjects,
          'validation_subjects': vals,
          'modes': train.EVAL_STATS,
          'history': hist,
          'summary': summary,
        },
        f,
      )


if __name__ == '__main__':
  app.run(main)
