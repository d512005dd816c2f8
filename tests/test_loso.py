"""The LOSO driver (plan -> epoch loop -> results) end to end on the tiny preset (real MSTRNN,
3-subject synth3a)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import checkpoint, epoch_loop, evaluate, launch, models, plan
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.data import pipeline


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  p = plan.plan(ec.get_config('tiny', 'synth3a'))
  workdir = str(tmp_path_factory.mktemp('loso') / 'run')
  out = launch.run_experiment(p, workdir, progress=False, log=lambda s: None)
  return p, workdir, out


def test_results_files_and_summary(tiny_run):
  p, workdir, out = tiny_run
  for name in ('experiment.json', 'results.json', 'results.md', 'metrics.csv', 'curves_mstrnn.png'):
    assert os.path.exists(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, 'results.json')) as f:
    res = json.load(f)
  entry = res['models']['mstrnn']
  assert res['final'] and entry['epochs_done'] == p.config.epochs
  test_acc = np.asarray(entry['history']['test_acc'])
  assert test_acc.shape == (3, p.config.epochs, 2)  # 3 folds, epochs, action + joint
  assert [r['test_subject'] for r in entry['runs']] == [0, 1, 2]
  want = evaluate.summarize_group(test_acc, ['action'])
  got = dict(entry['summary']['2,100'])
  assert set(got.pop('eval_stats')) == set(p.config.eval_stats)
  train_joint = np.asarray(entry['history']['train_acc'])[:, :, -1].mean(axis=0)
  np.testing.assert_allclose(got.pop('train_acc'), train_joint)
  assert got == json.loads(json.dumps(want))
  md = open(os.path.join(workdir, 'results.md')).read()
  assert evaluate.fmt(want['mean']['action'], want['se']['action']) in md
  assert 'has training plateaued?' in md
  assert f'| {p.config.epochs} | {train_joint[-1]:.1f} |' in md
  rows = open(os.path.join(workdir, 'metrics.csv')).read().strip().split('\n')
  assert len(rows) == 1 + 3 * p.config.epochs


def test_checkpoint_reproduces_last_epoch_accuracy(tiny_run):
  """load_run + models.apply on each held-out subject == the history's last-epoch accuracy,
  with the statistics the reported accuracy used (population) and with the running ones."""
  p, workdir, out = tiny_run
  run = checkpoint.load_run(workdir)
  assert run.epoch == p.config.epochs and len(run.runs) == 3
  assert p.config.eval_stats[0] == 'population' and run.stats_mode == 'population'
  ds = pipeline.load_dataset(run.dataset, **run.dataset_kwargs)
  history = out['models']['mstrnn']['history']
  for stats, key in ((run.batch_stats, 'test_acc'), (run.running_stats, 'test_acc_running')):
    last = np.asarray(history[key])[:, -1, 0]
    for r, info in enumerate(run.runs):
      idx = np.nonzero(ds.subjects == info['test_subject'])[0]
      x = pipeline.center_crop(jnp.asarray(ds.videos[idx]), ds.crop_size).astype(jnp.float32) / 255
      logits = models.apply(
        run.model_cfg,
        jax.tree.map(lambda a: a[r], run.params),
        jax.tree.map(lambda a: a[r], stats),
        x,
        jnp.asarray(info['taus'], jnp.float32),
        train=False,
      ).logits
      pred = np.asarray(evaluate.predict(logits['action'][:, -p.config.voting_steps :]))
      acc = 100.0 * np.mean(pred == ds.labels['action'][idx])
      assert acc == pytest.approx(last[r], abs=1e-6), (key, r)
  differ = jax.tree.map(lambda a, b: not np.allclose(a, b), run.batch_stats, run.running_stats)
  assert any(jax.tree.leaves(differ))


def test_events_read_back_with_tensorboard(tiny_run):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top

  p, workdir, out = tiny_run
  acc = event_accumulator.EventAccumulator(os.path.join(workdir, 'events', 'mstrnn'))
  acc.Reload()
  events = acc.Scalars('subject1_tau2_tau100/test_acc_action')
  assert [e.step for e in events] == list(range(1, p.config.epochs + 1))
  want = np.asarray(out['models']['mstrnn']['history']['test_acc'])[1, :, 0]
  np.testing.assert_allclose([e.value for e in events], want, rtol=1e-6)
  assert 'mean/train_loss' in acc.Tags()['scalars']


def test_experiment_json_rebuilds_the_config(tiny_run):
  _, workdir, _ = tiny_run
  from mstrnn_jax import workdir as wd  # pylint: disable=g-import-not-at-top

  assert wd.read_config(workdir) == ec.get_config('tiny', 'synth3a')


def test_results_md_names_the_settings_changed_from_the_preset(tiny_run):
  _, workdir, _ = tiny_run
  md = open(os.path.join(workdir, 'results.md')).read()
  assert 'Settings changed from the tiny preset: none' in md
  config = ec.with_epochs(ec.get_config('quick', 'synth3a'), 80)
  config = ec.override(config, {'augment.tempo_range': 1.5, 'data.synth3a.reuse_clips': True})
  assert ec.changed_settings(config) == {
    'epochs': 80,
    'optim.lr_boundaries': (56,),
    'augment.tempo_range': 1.5,
    'data.synth3a.reuse_clips': True,
  }


@pytest.mark.parametrize(
  'change, message',
  [
    (dict(taus=((0.0, 100.0),)), 'must be finite and >= 1'),
    (dict(batch_size=100), 'larger than the smallest training set'),
    (dict(subjects=(7,)), 'not in synth3a'),
    (dict(voting_steps=50), 'exceeds the video length'),
  ],
)
def test_bad_settings_fail_before_compiling(change, message):
  config = ec.override(ec.get_config('tiny', 'synth3a'), change)
  with pytest.raises(ValueError, match=message):
    plan.plan(config)


def test_unknown_dataset_and_unprepared_real_dataset(tmp_path):
  with pytest.raises(ValueError, match='unknown dataset'):
    ec.get_config(None, 'ucf101')
  with pytest.raises(Exception, match='cl1ad'):
    plan.plan(ec.get_config(None, 'cl1ad'), data_dir=str(tmp_path))


def test_nonfinite_loss_stops_and_keeps_last_results(tmp_path):
  config = ec.override(
    ec.get_config('tiny', 'synth3a'),
    {'epochs': 3, 'subjects': (0,), 'optim.lr_values': (1e-3, 1e38), 'optim.lr_boundaries': (1,)},
  )
  p = plan.plan(config)
  workdir = str(tmp_path / 'nan')
  with pytest.raises(epoch_loop.NonFiniteLossError, match=r'epoch 2, step \d+'):
    launch.run_experiment(p, workdir, progress=False, log=lambda s: None)
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f)['models']['mstrnn']['epochs_done'] == 1
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', 'mstrnn', '1'))


def test_batch_order_and_initialisation_seed_separately():
  base = ec.override(ec.get_config('tiny', 'synth3a'), {'subjects': (0,)})
  p = plan.plan(base)
  states = epoch_loop.initial_states(epoch_loop.setup(p, 'mstrnn'))
  p2 = plan.plan(ec.override(base, {'seeds.batches': 7}))
  states2 = epoch_loop.initial_states(epoch_loop.setup(p2, 'mstrnn'))
  jax.tree.map(np.testing.assert_array_equal, states.params, states2.params)
  assert not np.array_equal(np.asarray(states.key), np.asarray(states2.key))
  p3 = plan.plan(ec.override(base, {'seeds.init': 7}))
  states3 = epoch_loop.initial_states(epoch_loop.setup(p3, 'mstrnn'))
  assert any(
    not np.array_equal(a, b)
    for a, b in zip(jax.tree.leaves(states.params), jax.tree.leaves(states3.params))
  )


def test_a_fold_starts_the_same_alone_or_among_all_folds_and_tau_pairs():
  base = ec.get_config('tiny', 'synth3a')
  full = epoch_loop.initial_states(epoch_loop.setup(plan.plan(base), 'mstrnn'))
  alone = epoch_loop.initial_states(
    epoch_loop.setup(plan.plan(ec.override(base, {'subjects': (2,)})), 'mstrnn')
  )
  for a, b in zip(
    jax.tree.leaves((full.params, full.key)), jax.tree.leaves((alone.params, alone.key))
  ):
    np.testing.assert_array_equal(np.asarray(a)[2], np.asarray(b)[0])
  assert not np.array_equal(np.asarray(full.key)[0], np.asarray(full.key)[2])
  sweep = epoch_loop.setup(
    plan.plan(ec.override(base, {'subjects': (1,), 'taus': ((2.0, 50.0), (2.0, 100.0))})), 'mstrnn'
  )
  assert [r['test_subject'] for r in sweep.runs] == [1, 1]
  paired = epoch_loop.initial_states(sweep)
  for a, b in zip(
    jax.tree.leaves((full.params, full.key)), jax.tree.leaves((paired.params, paired.key))
  ):
    np.testing.assert_array_equal(np.asarray(a)[1], np.asarray(b)[0])
    np.testing.assert_array_equal(np.asarray(b)[0], np.asarray(b)[1])
