"""Loss, optimiser chain, batch tables and the stacked-run programs (stand-in model)."""

import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

from mstrnn_jax import train
import standin_model

HEADS = (('a', 3), ('b', 2))


def toy_data(n=24, t=6, size=10, seed=0):
  """Videos whose mean red level gives label a and mean blue level gives label b."""
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 3, n)
  b = rng.integers(0, 2, n)
  v = rng.integers(0, 40, (n, t, size, size, 3))
  v[..., 0] += 60 * a[:, None, None, None]
  v[..., 2] += 100 * b[:, None, None, None]
  return v.astype(np.uint8), np.stack([a, b], 1).astype(np.int32)


def tables(train_sets, test_sets, taus, n_tr=None, n_te=None):
  n_tr = n_tr or max(map(len, train_sets))
  n_te = n_te or max(map(len, test_sets))
  pad = lambda x, n: np.pad(np.asarray(x, np.int32), (0, n - len(x)))
  return train.RunTables(
    train_idx=jnp.asarray(np.stack([pad(x, n_tr) for x in train_sets])),
    n_train=jnp.asarray([len(x) for x in train_sets], jnp.int32),
    test_idx=jnp.asarray(np.stack([pad(x, n_te) for x in test_sets])),
    test_mask=jnp.asarray(np.stack([np.arange(n_te) < len(x) for x in test_sets])),
    taus=jnp.asarray(np.asarray(taus, np.float32).reshape(len(taus), -1)),
  )


def test_voting_cross_entropy_matches_reference():
  rng = np.random.default_rng(0)
  logits = {'a': rng.normal(size=(4, 7, 3)), 'b': rng.normal(size=(4, 7, 2))}
  labels = rng.integers(0, 2, (4, 2)).astype(np.int32)
  want = 0.0
  for h, (name, _) in enumerate(HEADS):
    lg = logits[name][:, -3:]
    logp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    want += -np.mean(np.take_along_axis(logp, labels[:, h, None, None].repeat(3, 1), -1))
  got = train.voting_cross_entropy(
    {k: jnp.asarray(v, jnp.float32) for k, v in logits.items()},
    jnp.asarray(labels),
    HEADS,
    voting_steps=3,
  )
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_lr_schedule_paper_3acwd():
  optim = train.OptimConfig(lr_values=(0.01, 0.005, 0.001), lr_boundaries=(200, 300))
  sched = train.lr_schedule(optim, steps_per_epoch=8)
  for step, lr in [
    (0, 0.01),
    (1599, 0.01),
    (1600, 0.005),
    (2399, 0.005),
    (2400, 0.001),
    (10**6, 0.001),
  ]:
    assert float(sched(step)) == pytest.approx(lr), step
  with pytest.raises(ValueError, match='boundaries'):
    train.OptimConfig(lr_values=(0.1, 0.01), lr_boundaries=())


@pytest.mark.parametrize(
  'field, value',
  [
    ('lr_values', (0.01, 0.0, 0.001)),
    ('weight_decay', -1e-4),
    ('clip', 0.0),
    ('b1', 1.0),
    ('b2', -0.1),
    ('eps', 0.0),
  ],
)
def test_optimiser_settings_out_of_range_are_named(field, value):
  train.OptimConfig(**{field: train.OptimConfig.__dataclass_fields__[field].default})  # valid
  with pytest.raises(ValueError, match=rf'^OptimConfig: {field} must be '):
    train.OptimConfig(**{field: value})


def test_decay_mask_excludes_biases_and_bn():
  params = {
    'conv0': {
      'w': jnp.ones((3, 3, 3, 4)),
      'b': jnp.ones(4),
      'bn': {'gamma': jnp.ones(4), 'beta': jnp.ones(4)},
    },
    'lstm1': {'w_x': jnp.ones((5, 8)), 'b': jnp.ones(8)},
    'heads': {'action': {'w': jnp.ones((8, 27)), 'b': jnp.ones(27)}},
  }
  mask = train.decay_mask(params)
  assert mask == {
    'conv0': {'w': True, 'b': False, 'bn': {'gamma': False, 'beta': False}},
    'lstm1': {'w_x': True, 'b': False},
    'heads': {'action': {'w': True, 'b': False}},
  }


def test_optimizer_is_clip_then_l2_then_adam():
  """Two updates against a hand-written numpy reference of the documented chain."""
  optim = train.OptimConfig(lr_values=(0.1, 0.01), lr_boundaries=(1,), weight_decay=0.05, clip=1.0)
  tx = train.make_optimizer(optim, steps_per_epoch=1)
  params = {'w': jnp.asarray([[0.5, -2.0], [1.0, 3.0]]), 'b': jnp.asarray([1.0, -1.0])}
  grads = [
    {'w': jnp.asarray([[3.0, -0.2], [0.1, -5.0]]), 'b': jnp.asarray([2.0, 0.3])},
    {'w': jnp.asarray([[-0.4, 0.2], [2.0, 0.5]]), 'b': jnp.asarray([-3.0, 0.1])},
  ]
  state = tx.init(params)
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(x) for k, x in p.items()}
  for i, g in enumerate(grads):
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
    lr = 0.1 if i == 0 else 0.01
    for k in p:
      gk = np.clip(np.asarray(g[k], np.float64), -1.0, 1.0)
      if k == 'w':
        gk = gk + 0.05 * p[k]
      m[k] = 0.9 * m[k] + 0.1 * gk
      v[k] = 0.999 * v[k] + 0.001 * gk**2
      mh, vh = m[k] / (1 - 0.9 ** (i + 1)), v[k] / (1 - 0.999 ** (i + 1))
      p[k] = p[k] - lr * mh / (np.sqrt(vh) + 1e-8)
  for k in p:
    np.testing.assert_allclose(params[k], p[k], rtol=1e-5, atol=1e-6)


def test_epoch_batches_permute_valid_rows():
  train_idx = jnp.asarray([10, 11, 12, 13, 14, 0, 0], jnp.int32)  # 5 valid + padding
  key = jax.random.key_data(jax.random.key(3))
  b0 = np.asarray(train.epoch_batches(key, jnp.int32(0), train_idx, jnp.int32(5), 2, 2))
  b1 = np.asarray(train.epoch_batches(key, jnp.int32(1), train_idx, jnp.int32(5), 2, 2))
  again = np.asarray(train.epoch_batches(key, jnp.int32(0), train_idx, jnp.int32(5), 2, 2))
  assert b0.shape == (2, 2)
  for b in (b0, b1):
    assert len(set(b.ravel())) == 4 and set(b.ravel()) <= {10, 11, 12, 13, 14}
  np.testing.assert_array_equal(b0, again)
  full = np.asarray(train.epoch_batches(key, jnp.int32(2), train_idx, jnp.int32(5), 5, 1))
  assert sorted(full.ravel()) == [10, 11, 12, 13, 14]


def _programs(run_chunk, steps=3, batch=4, optim=None, **kwargs):
  model = standin_model.make(HEADS, input_size=8)
  optim = optim or train.OptimConfig(lr_values=(0.05,), lr_boundaries=())
  return train.make_programs(
    model,
    optim,
    batch_size=batch,
    steps_per_epoch=steps,
    voting_steps=2,
    eval_batch_size=5,
    eval_stats=('running',),
    run_chunk=run_chunk,
    **kwargs,
  )


def _train(programs, tab, keys, videos, labels, epochs=2):
  states = programs.init(keys)
  for _ in range(epochs):
    states, metrics = programs.train_epoch(states, videos, labels, tab)
  return states, metrics, programs.evaluate(states, videos, labels, tab).test[:, 0]


@pytest.mark.parametrize('run_chunk', [None, 1])
def test_stacked_runs_equal_runs_trained_alone(run_chunk):
  """Three runs with different training sets and taus stacked == each run on its own."""
  videos, labels = toy_data()
  videos, labels = jnp.asarray(videos), jnp.asarray(labels)
  trains = [np.arange(0, 16), np.arange(8, 24), np.arange(0, 24, 2)]
  tests = [np.arange(16, 24), np.arange(0, 8), np.arange(1, 24, 4)]
  taus = [[1.5], [4.0], [2.0]]
  keys = jnp.asarray(np.stack([jax.random.key_data(jax.random.key(s)) for s in range(3)]))
  stacked = _train(_programs(run_chunk), tables(trains, tests, taus), keys, videos, labels)
  single = _programs(run_chunk)
  for r in range(3):
    # Same padded table widths as the stacked tables: one compilation serves the three runs.
    alone = _train(
      single,
      tables(trains[r : r + 1], tests[r : r + 1], taus[r : r + 1], 16, 8),
      keys[r : r + 1],
      videos,
      labels,
    )
    jax.tree.map(
      lambda s, a: np.testing.assert_allclose(s[r], a[0], rtol=2e-5, atol=1e-6),
      stacked[0].params,
      alone[0].params,
    )
    np.testing.assert_allclose(stacked[1].loss[r], alone[1].loss[0], rtol=2e-5)
    np.testing.assert_array_equal(stacked[2][r, : len(tests[r])], alone[2][0, : len(tests[r])])
  # The runs really differ (different data / taus / keys).
  assert not np.allclose(stacked[0].params['proj']['w'][0], stacked[0].params['proj']['w'][1])


def test_training_learns_the_toy_task():
  videos, labels = toy_data(n=48, seed=1)
  videos, labels = jnp.asarray(videos), jnp.asarray(labels)
  tab = tables([np.arange(0, 40)], [np.arange(40, 48)], [[2.0]])
  programs = _programs(1, steps=10, batch=4)
  states = programs.init(jnp.asarray(jax.random.key_data(jax.random.key(0)))[None])
  losses = []
  for _ in range(6):
    states, m = programs.train_epoch(states, videos, labels, tab)
    losses.append(float(m.loss.mean()))
  assert losses[-1] < 0.5 * losses[0], losses
  train_acc = m.correct[0].sum(0) / m.count[0].sum()
  assert train_acc[-1] > 0.6, train_acc  # joint accuracy of the last epoch (chance 1/6)
  assert int(states.epoch[0]) == 6
  assert int(states.opt_state[2].count[0]) == 60  # Adam steps


def test_stack_labels_orders_heads():
  got = train.stack_labels({'b': np.array([1, 0]), 'a': np.array([2, 1])}, HEADS)
  np.testing.assert_array_equal(got, [[2, 1], [1, 0]])
  with pytest.raises(ValueError, match='heads'):
    train.stack_labels({'a': np.array([0])}, HEADS)


def test_tempo_warp_changes_training_reproducibly_and_is_off_by_default():
  from mstrnn_jax import plan
  from mstrnn_jax import experiment_configs as ec
  from mstrnn_jax.data import pipeline

  videos, labels = toy_data(t=8)
  videos[:, 5:] = videos[:, 4:5]  # true length 5 of 8: room to slow down
  videos, labels = jnp.asarray(videos), jnp.asarray(labels)
  tab = tables([np.arange(16)], [np.arange(16, 24)], [[2.0]])
  keys = jnp.asarray(jax.random.key_data(jax.random.key(0)))[None]
  plain = _train(_programs(1), tab, keys, videos, labels)
  off = _train(_programs(1, tempo_warp=pipeline.TempoWarp(1.0, 3)), tab, keys, videos, labels)
  warp = pipeline.TempoWarp(1.5, 1)
  on = _train(_programs(1, tempo_warp=warp), tab, keys, videos, labels)
  again = _train(_programs(1, tempo_warp=warp), tab, keys, videos, labels)
  np.testing.assert_array_equal(plain[1].loss, off[1].loss)
  np.testing.assert_array_equal(on[1].loss, again[1].loss)
  assert not np.allclose(on[1].loss, plain[1].loss)
  # The experiment's augment fields reach both program builders.
  config = ec.override(ec.get_config('tiny', 'synth3a'), {'augment.tempo_range': 1.5})
  assert plan.program_options(plan.plan(config))['tempo_warp'] == warp
