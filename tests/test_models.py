"""Models: float64 NumPy reference, kernel variants, streaming, vmap over taus, BN statistics."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpy_reference as ref
from mstrnn_jax import configs
from mstrnn_jax import layers, models

HEADS = (('ado', 3), ('action', 2))
# cfg, train and return_activations are static.
apply_jit = jax.jit(models.apply, static_argnums=(0, 5, 6))


def tiny_mstrnn(**overrides):
  # 30x30 at stride 1: conv0 28, pool 14; layer 1: feature 12, pool 6, context 5;
  # layer 2: feature 4, pool 2, context 1 (the smallest 2-layer MSTRNN).
  fields = dict(feature_widths=(3, 4), context_widths=(3, 4), fc_widths=(5, 4), conv0_width=2)
  fields.update(overrides)
  return configs.derive_config('mstrnn', 30, HEADS, bn_steps=3, conv0_stride=1, **fields)


def to64(tree):
  return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def random_stats(batch_stats, seed):
  """Distinct, non-trivial running statistics per step (to test the per-step lookup)."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: rng.uniform(0.2, 1.5, x.shape).astype(x.dtype), batch_stats)


def random_params(params, seed):
  """Random gammas/betas/biases so that BN affine terms and biases matter."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: (x + 0.3 * rng.standard_normal(x.shape)).astype(x.dtype), params)


@pytest.mark.parametrize('train', [True, False])
def test_mstrnn_matches_float64_numpy_reference(train):
  cfg = tiny_mstrnn()
  with jax.enable_x64(True):
    variables = to64(models.init(cfg, jax.random.PRNGKey(0)))
    params = random_params(variables['params'], 1)
    stats = random_stats(variables['batch_stats'], 2)
    videos = jax.random.uniform(
      jax.random.PRNGKey(3), (3, 4, 30, 30, 3), jnp.float64
    )  # T=4 > bn_steps=3
    taus = jnp.array([2.0, 5.0])
    if train:
      cfg = dataclasses.replace(cfg, bn_steps=4)
      stats = jax.tree.map(lambda s: jnp.concatenate([s, s[-1:]]), stats)
    out = apply_jit(cfg, params, stats, videos, taus, train, True)
    logits_ref, acts_ref, stats_ref = ref.mstrnn(
      jax.tree.map(np.asarray, params),
      jax.tree.map(np.asarray, stats),
      np.asarray(videos),
      [2.0, 5.0],
      1,
      train,
      cfg.bn_epsilon,
    )
    for name in cfg.head_names:
      np.testing.assert_allclose(out.logits[name], logits_ref[name], rtol=1e-5, atol=1e-9)
    for name in models.activation_names(cfg):
      np.testing.assert_allclose(
        out.activations[name], acts_ref[name], rtol=1e-5, atol=1e-9, err_msg=name
      )
    if train:
      m = cfg.bn_momentum
      expected = jax.tree.map(lambda old, new: m * old + (1 - m) * new, stats, stats_ref)
      chex_tree_allclose(out.batch_stats, expected)
    else:
      chex_tree_allclose(out.batch_stats, stats)


def chex_tree_allclose(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-9)


def small_config(model, **overrides):
  return configs.derive_config(model, 32, HEADS, bn_steps=5, width_scale=0.0625, **overrides)


@pytest.mark.parametrize('model', configs.MODELS)
def test_hoisted_equals_all_in_scan_and_streaming(model):
  cfg = small_config(model)
  with jax.enable_x64(True):
    variables = to64(models.init(cfg, jax.random.PRNGKey(0)))
    params = random_params(variables['params'], 1)
    videos = jax.random.uniform(jax.random.PRNGKey(3), (4, 5, 32, 32, 3), jnp.float64)
    taus = jnp.asarray(cfg.taus, jnp.float64)
    scan_cfg = dataclasses.replace(cfg, time_layout='all_in_scan')
    train_h = apply_jit(cfg, params, variables['batch_stats'], videos, taus, True, True)
    train_s = apply_jit(scan_cfg, params, variables['batch_stats'], videos, taus, True, True)
    chex_tree_allclose(
      (train_h.logits, train_h.activations, train_h.batch_stats),
      (train_s.logits, train_s.activations, train_s.batch_stats),
    )
    assert set(train_h.activations) == set(models.activation_names(cfg))
    for name, shape in configs.layer_shapes(cfg).items():
      assert train_h.activations[name].shape == (4, 5) + shape, name
    for name, n in cfg.heads:
      assert train_h.logits[name].shape == (4, 5, n)
    stats = random_stats(variables['batch_stats'], 2)
    long_videos = jnp.concatenate([videos, videos[:, :2]], axis=1)  # 7 steps > bn_steps = 5
    eval_h = apply_jit(cfg, params, stats, long_videos, taus, False, False)
    eval_s = apply_jit(scan_cfg, params, stats, long_videos, taus, False, False)
    assert eval_h.activations is None
    chex_tree_allclose(eval_h.logits, eval_s.logits)
    state = models.initial_state(cfg, params, 4)
    step = jax.jit(models.step, static_argnums=0)
    streamed = []
    for t in range(long_videos.shape[1]):
      state, logits = step(cfg, params, stats, state, long_videos[:, t], taus, t)
      streamed.append(logits)
    streamed = jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *streamed)
    chex_tree_allclose(streamed, eval_h.logits)


def test_vmap_over_taus_equals_separate_calls():
  cfg = small_config('mstrnn')
  with jax.enable_x64(True):
    variables = to64(models.init(cfg, jax.random.PRNGKey(0)))
    videos = jax.random.uniform(jax.random.PRNGKey(3), (2, 5, 32, 32, 3), jnp.float64)
    taus = jnp.array([[2.0, 100.0], [1.0, 1.0], [5.0, 20.0]])
    apply = jax.jit(
      lambda tau: models.apply(
        cfg, variables['params'], variables['batch_stats'], videos, tau, True
      )
    )
    batched = jax.jit(jax.vmap(apply))(taus)
    for i in range(taus.shape[0]):
      single = apply(taus[i])
      chex_tree_allclose(
        (single.logits, single.batch_stats),
        jax.tree.map(lambda x: x[i], (batched.logits, batched.batch_stats)),
      )
    # Different taus must give different outputs (tau reaches the computation).
    assert not np.allclose(batched.logits['ado'][0], batched.logits['ado'][1])


def test_associative_leaky_scan_and_remat_match_sequential():
  # Loss and gradients equal with the feature units' associative scan + checkpointed scan bodies.
  cfg = small_config('mstrnn')
  variables = models.init(cfg, jax.random.PRNGKey(0))
  videos = jax.random.uniform(jax.random.PRNGKey(3), (2, 5, 32, 32, 3))
  taus = jnp.asarray(cfg.taus)

  def loss_and_grad(c):
    def loss(params):
      logits = models.apply(c, params, variables['batch_stats'], videos, taus, True).logits
      return sum(jnp.sum(jnp.sin(x)) for x in logits.values())

    return jax.jit(jax.value_and_grad(loss))(variables['params'])

  base = loss_and_grad(cfg)
  other = loss_and_grad(dataclasses.replace(cfg, leaky_scan='associative', remat=True))
  for x, y in zip(jax.tree.leaves(base), jax.tree.leaves(other)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_init_follows_paper_initialisation_and_names():
  cfg = configs.get_model_config('mstrnn', 'cl1ad', bn_steps=7)
  v = jax.eval_shape(lambda: models.init(cfg, jax.random.PRNGKey(0)))
  layer2 = v['params']['context_layer2']
  assert set(layer2) == {
    'k',
    'b',
    'bn_k',
    'z',
    'bn_z',
    'k_tilde',
    'b_tilde',
    'bn_k_tilde',
    'z_tilde',
    'bn_z_tilde',
  }
  assert 'z' not in v['params']['context_layer1']  # no previous context layer
  assert layer2['k'].shape == (3, 3, 64, 128) and layer2['z'].shape == (2, 2, 128, 128)
  assert layer2['k_tilde'].shape == (2, 2, 128, 256) and layer2['z_tilde'].shape == (3, 3, 256, 256)
  assert v['batch_stats']['context_layer2']['bn_z_tilde']['mean'].shape == (7, 256)
  small = small_config('lrcn')
  variables = models.init(small, jax.random.PRNGKey(0))
  for leaf_path, leaf in jax.tree_util.tree_flatten_with_path(variables['params'])[0]:
    keys = [k.key for k in leaf_path]
    if keys[-1] == 'gamma':
      np.testing.assert_allclose(leaf, 0.1)
    if keys[-1] == 'beta':
      np.testing.assert_array_equal(leaf, 0.0)
  b = variables['params']['lstm1']['b']
  units = small.lstm_widths[0]
  np.testing.assert_array_equal(b[units : 2 * units], 1.0)  # forget gate
  np.testing.assert_array_equal(b[:units], 0.0)


def test_training_longer_than_bn_steps_raises():
  cfg = small_config('mstrnn')
  variables = models.init(cfg, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match='bn_steps'):
    models.apply(
      cfg,
      variables['params'],
      variables['batch_stats'],
      jnp.zeros((2, 6, 32, 32, 3)),
      jnp.asarray(cfg.taus),
      True,
    )
  with pytest.raises(ValueError, match='taus'):
    models.apply(
      cfg,
      variables['params'],
      variables['batch_stats'],
      jnp.zeros((2, 3, 32, 32, 3)),
      jnp.ones(3),
      False,
    )


@pytest.mark.parametrize('model', configs.MODELS)
def test_parameter_counts_match_table_ii(model):
  cfg = configs.get_model_config(model, 'cl1ad')
  variables = jax.eval_shape(lambda: models.init(cfg, jax.random.PRNGKey(0)))
  count = sum(x.size for x in jax.tree.leaves(variables['params']))
  target = configs.TABLE_II_PARAMS[model]
  print(f'{model}: {count:,} parameters (Table II: {target / 1e6:.1f}M)')
  assert abs(count - target) <= 0.1 * target


@pytest.mark.parametrize('fc_input', ['contexts', 'pool'])
def test_fc_input_ablations_feed_the_named_layers(fc_input):
  cfg = small_config('mstrnn', fc_input=fc_input)
  variables = models.init(cfg, jax.random.PRNGKey(0))
  params, stats = variables['params'], variables['batch_stats']
  videos = jax.random.uniform(jax.random.PRNGKey(1), (3, 4, 32, 32, 3))
  out = apply_jit(cfg, params, stats, videos, jnp.asarray(cfg.taus), True, True)
  names_ = configs.fc_input_layers(cfg)
  flat = jnp.concatenate([out.activations[n].reshape(3, 4, -1) for n in names_], axis=-1)
  shapes = configs.layer_shapes(cfg)
  assert params['fc1']['w'].shape[0] == flat.shape[-1] == sum(np.prod(shapes[n]) for n in names_)
  fc1, _ = layers.fully_connected(params['fc1'], stats['fc1'], flat, True, cfg.bn_epsilon)
  np.testing.assert_allclose(out.activations['fc1'], fc1, rtol=1e-5, atol=1e-6)


def test_three_context_layers_with_their_own_tau():
  cfg = configs.derive_config(
    'mstrnn',
    62,
    (('ado', 2),),
    bn_steps=3,
    conv0_stride=1,
    feature_widths=(2, 2, 3),
    context_widths=(2, 2, 3),
    fc_widths=(4, 4),
    conv0_width=2,
    taus=(2.0, 10.0, 100.0),
  )
  variables = models.init(cfg, jax.random.PRNGKey(0))
  videos = jax.random.uniform(jax.random.PRNGKey(1), (2, 3, 62, 62, 3))
  outs = [
    apply_jit(
      cfg, variables['params'], variables['batch_stats'], videos, jnp.array(taus), True, True
    )
    for taus in ([2.0, 10.0, 100.0], [2.0, 10.0, 1.0])
  ]
  assert outs[0].activations['context3'].shape == (2, 3, 1, 1, 3)
  assert 'z' in variables['params']['context_layer3']
  # The third tau acts on the third layer only.
  np.testing.assert_allclose(outs[0].activations['context2'], outs[1].activations['context2'])
  assert not np.allclose(outs[0].activations['context3'], outs[1].activations['context3'])
