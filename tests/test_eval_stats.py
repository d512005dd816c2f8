"""Evaluation statistics ('running', 'subject', 'population') against direct models.apply."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import configs, evaluate, models, train
from mstrnn_jax.data import pipeline
import standin_model
import test_train

HEADS = (('ado', 3), ('action', 2))
T, SIZE, VOTE, BATCH = 4, 32, 2, 4


@pytest.fixture(scope='module')
def setup():
  """A tiny MSTRNN with random running statistics (not the initial ones)."""
  cfg = configs.derive_config(
    'mstrnn',
    30,
    HEADS,
    bn_steps=T,
    conv0_stride=1,
    feature_widths=(3, 4),
    context_widths=(3, 4),
    fc_widths=(5, 4),
    conv0_width=2,
  )
  rng = np.random.default_rng(0)
  videos = rng.integers(0, 256, (20, T, SIZE, SIZE, 3)).astype(np.uint8)
  labels = np.stack([rng.integers(0, 3, 20), rng.integers(0, 2, 20)], 1).astype(np.int32)
  # Run 0: 10 training videos (padded to 12 by the wider run 1), 3 test videos + 3 padding slots.
  tab = test_train.tables(
    [np.arange(10), np.arange(2, 14)],
    [np.array([14, 15, 16]), np.arange(14, 20)],
    [[2.0, 5.0], [3.0, 9.0]],
  )
  fns = train.model_fns(cfg)
  tx = train.make_optimizer(train.OptimConfig(), 1)
  states = jax.vmap(lambda k: train.create_train_state(fns, tx, k))(
    jnp.asarray(np.stack([jax.random.key_data(jax.random.key(s)) for s in range(2)]))
  )
  stats_rng = np.random.default_rng(1)
  states = states.replace(
    batch_stats=jax.tree.map(
      lambda x: jnp.asarray(stats_rng.uniform(0.2, 1.5, x.shape), x.dtype), states.batch_stats
    )
  )
  return cfg, fns, states, videos, labels, tab


def _run(states, r):
  return jax.tree.map(lambda x: x[r], states)


def _crop(videos):
  return pipeline.to_float(pipeline.center_crop(jnp.asarray(videos), 30))


_apply = jax.jit(models.apply, static_argnums=(0, 5))


def _direct_flags(cfg, state, stats, videos, labels, rows, taus):
  out = _apply(cfg, state.params, stats, _crop(videos[rows]), taus, False)
  return np.asarray(evaluate.correct_flags(out.logits, jnp.asarray(labels[rows]), HEADS, VOTE))


def _plain_stats(cfg, state, videos, taus):
  """Training-mode batch statistics of ``videos`` by a direct models.apply."""
  plain = dataclasses.replace(cfg, bn_momentum=0.0)
  return _apply(plain, state.params, state.batch_stats, _crop(videos), taus, True).batch_stats


@pytest.fixture(scope='module')
def population(setup):
  """Run r's population statistics from the engine's function, per run."""
  _, fns, states, videos, _, tab = setup
  fn = jax.jit(
    lambda st, r: train.population_statistics(
      fns,
      st.params,
      st.batch_stats,
      jnp.asarray(videos),
      tab.train_idx[r],
      tab.n_train[r],
      tab.taus[r],
      st.key,
      st.epoch,
      BATCH,
    )
  )
  return [fn(_run(states, r), r) for r in range(2)]


def test_pool_statistics_is_the_union_of_equal_batches():
  x = (
    np.random.default_rng(1).normal(size=(3, 5, 7)) * np.array([1.0, 4.0, 9.0])[:, None, None] + 2.0
  )
  per_batch = {'bn': {'mean': x.mean(1), 'var': x.var(1)}, 'other': x.mean(1)}
  got = train.pool_statistics(jax.tree.map(jnp.asarray, per_batch))
  union = x.reshape(15, 7)
  np.testing.assert_allclose(got['bn']['mean'], union.mean(0), rtol=1e-5)
  np.testing.assert_allclose(got['bn']['var'], union.var(0), rtol=1e-4)
  np.testing.assert_allclose(got['other'], union.mean(0), rtol=1e-5)


def test_subject_statistics_are_the_valid_videos_batch_and_ignore_padding(setup):
  cfg, fns, states, videos, _, tab = setup
  state, taus = _run(states, 0), tab.taus[0]
  want = _plain_stats(cfg, state, videos[[14, 15, 16]], taus)
  mask = jnp.asarray([True, True, True, False, False, False])
  fn = jax.jit(
    lambda rows: train.subject_statistics(
      fns, state.params, state.batch_stats, jnp.asarray(videos), rows, mask, taus
    )
  )
  for pad in ([0, 0, 0], [19, 3, 7]):  # whatever the padded slots hold
    got = fn(jnp.asarray([14, 15, 16] + pad, jnp.int32))
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-5), got, want)


def test_population_statistics_pool_training_batches(setup, population):
  cfg, _, states, videos, _, tab = setup
  state, taus = _run(states, 0), tab.taus[0]
  got = population[0]
  # The first BN sees the crops themselves: its pooled statistics are those of all training
  # videos in one pass, whatever the batching. 12 padded rows / batch 4 = 3 batches of the
  # 10 valid rows (2 of them twice): compare to that multiset.
  first = 'conv0'
  pkey = jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(state.key), 2))
  rows = np.asarray(
    train.epoch_batches(pkey, state.epoch, tab.train_idx[0], tab.n_train[0], 3, BATCH)
  )
  assert set(rows.ravel()) == set(range(10)) and rows.size == 12
  multiset = _plain_stats(cfg, state, videos[rows.ravel()], taus)
  jax.tree.map(
    lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-5), got[first], multiset[first]
  )
  assert not np.allclose(got[first]['bn']['mean'], state.batch_stats[first]['bn']['mean'])
  # Deeper BNs: the per-batch statistics of direct passes, pooled.
  per_batch = [_plain_stats(cfg, state, videos[r], taus) for r in rows]
  pooled = train.pool_statistics(jax.tree.map(lambda *xs: jnp.stack(xs), *per_batch))
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-5), got, pooled)


def test_population_statistics_of_a_batch_subset(setup):
  """max_batches=1: the statistics of the first batch of the epoch's shuffled order alone."""
  cfg, fns, states, videos, _, tab = setup
  state, taus = _run(states, 0), tab.taus[0]
  got = train.population_statistics(
    fns,
    state.params,
    state.batch_stats,
    jnp.asarray(videos),
    tab.train_idx[0],
    tab.n_train[0],
    taus,
    state.key,
    state.epoch,
    BATCH,
    max_batches=1,
  )
  pkey = jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(state.key), 2))
  rows = np.asarray(
    train.epoch_batches(pkey, state.epoch, tab.train_idx[0], tab.n_train[0], 3, BATCH)
  )
  want = _plain_stats(cfg, state, videos[rows[0]], taus)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-5), got, want)
  with pytest.raises(ValueError, match='population_batches must be >= 1'):
    train.make_programs(
      fns,
      train.OptimConfig(),
      batch_size=4,
      steps_per_epoch=1,
      voting_steps=1,
      population_batches=0,
    )


def test_evaluate_stats_program_matches_direct_apply():
  """The program's flags per mode == the stand-in model's apply with that mode's statistics."""
  model = standin_model.make(test_train.HEADS, input_size=8)
  videos, labels = test_train.toy_data()
  # Run 1 holds out 3 videos in 6 slots (padding); its training set is padded too.
  tab = test_train.tables(
    [np.arange(0, 16), np.arange(4, 14)], [np.arange(16, 22), [0, 5, 23]], [[1.5], [4.0]]
  )
  programs = train.make_programs(
    model,
    train.OptimConfig(lr_values=(0.05,), lr_boundaries=()),
    batch_size=4,
    steps_per_epoch=3,
    voting_steps=2,
    eval_batch_size=3,
    eval_stats=('population', 'running', 'subject'),
    run_chunk=1,
  )
  states = programs.init(
    jnp.asarray(np.stack([jax.random.key_data(jax.random.key(s)) for s in range(2)]))
  )
  states, _ = programs.train_epoch(states, jnp.asarray(videos), jnp.asarray(labels), tab)
  # Validation rows: run 0 the videos 22, 23; run 1 none but padding (one valid video, 6).
  tab = tab.replace(
    val_idx=jnp.asarray([[22, 23], [6, 0]], jnp.int32),
    val_mask=jnp.asarray([[True, True], [True, False]]),
  )
  out = programs.evaluate(states, jnp.asarray(videos), jnp.asarray(labels), tab)
  flags = np.asarray(out.test)
  assert flags.shape == (2, 3, 6, 3) and out.val.shape == (2, 3, 2, 3)
  no_val = programs.evaluate(
    states, jnp.asarray(videos), jnp.asarray(labels), tab.replace(val_idx=None, val_mask=None)
  )
  assert no_val.val is None
  np.testing.assert_array_equal(no_val.test, flags)
  crop = lambda v: pipeline.to_float(pipeline.center_crop(jnp.asarray(v), 8))  # noqa: E731
  for r in range(2):
    state, taus = _run(states, r), tab.taus[r]
    rows = np.asarray(tab.test_idx[r])[np.asarray(tab.test_mask[r])]
    subject = model.batch_statistics(state.params, None, crop(videos[rows]), taus)
    n = int(tab.n_train[r])
    pkey = jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(state.key), 2))
    batches = np.asarray(train.epoch_batches(pkey, state.epoch, tab.train_idx[r], n, 4, 4))
    population = {
      'proj': {
        'mean': np.mean(
          [
            model.batch_statistics(state.params, None, crop(videos[b]), taus)['proj']['mean']
            for b in batches
          ],
          0,
        )
      }
    }
    distinct = []
    val_rows = np.asarray(tab.val_idx[r])[np.asarray(tab.val_mask[r])]
    val_subject = model.batch_statistics(state.params, None, crop(videos[val_rows]), taus)
    for m, (stats, val_stats) in enumerate(
      ((population, population), (state.batch_stats, state.batch_stats), (subject, val_subject))
    ):
      for got, rr, st in (
        (flags[r, m], rows, stats),
        (np.asarray(out.val)[r, m], val_rows, val_stats),
      ):
        logits, _ = model.apply(state.params, st, crop(videos[rr]), taus, False)
        want = evaluate.correct_flags(logits, jnp.asarray(labels[rr]), test_train.HEADS, 2)
        np.testing.assert_array_equal(got[: len(rr)], want, err_msg=f'run {r} mode {m}')
      distinct.append(stats['proj']['mean'])
    assert not np.allclose(distinct[0], distinct[1]) and not np.allclose(distinct[1], distinct[2])


def test_eval_stats_are_checked():
  with pytest.raises(ValueError, match='eval_stats'):
    train.check_eval_stats(('running', 'batch'))
  model = dataclasses.replace(
    train.model_fns(configs.derive_config('lrcn', 30, HEADS, bn_steps=2, width_scale=0.05)),
    batch_statistics=None,
  )
  with pytest.raises(ValueError, match='batch_statistics'):
    train.check_eval_stats(('population',), model)
