"""mstrnn_jax/bn_probe.py and experiments/bn_probe.py: where the BN statistics matter."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import analysis, bn_probe, checkpoint, configs, evaluate, models, train
from mstrnn_jax.data import pipeline
import fake_workdir
import subproc

MODELS = ('mstrnn', 'lrcn')


def _cfg(model):
  return configs.derive_config(model, 32, (('action', 27),), bn_steps=4, width_scale=0.125)


def _bn_nodes(stats):
  return {(m, k) for m, sub in stats.items() for k, node in sub.items() if 'mean' in node}


@pytest.mark.parametrize('model', ['mstrnn', 'lrcn', 'mstnn'])
def test_sites_hold_every_bn_node_once_in_forward_order(model):
  cfg = _cfg(model)
  sites = bn_probe.bn_sites(cfg)
  nodes = [node for _, group in sites for node in group]
  stats = jax.eval_shape(lambda: models.init(cfg, jax.random.key(0)))['batch_stats']
  assert len(nodes) == len(set(nodes)) and set(nodes) == _bn_nodes(stats)
  order = list(configs.layer_shapes(cfg))
  names = [name for name, _ in sites]
  assert names == sorted(names, key=order.index)
  if model == 'mstrnn':
    assert names == ['conv0', 'feature1', 'context1', 'feature2', 'context2', 'fc1', 'fc2']
    groups = dict(sites)
    assert groups['feature2'] == (('context_layer2', 'bn_k'), ('context_layer2', 'bn_z'))
    assert groups['context1'] == (
      ('context_layer1', 'bn_k_tilde'),
      ('context_layer1', 'bn_z_tilde'),
    )
  if model == 'lrcn':
    assert names == ['conv0', 'conv1', 'conv2', 'fc1', 'lstm1', 'lstm2']


def _tree(cfg, value):
  stats = jax.eval_shape(lambda: models.init(cfg, jax.random.key(0)))['batch_stats']
  return jax.tree.map(lambda s: np.full(s.shape, value, np.float32), stats)


def test_splice_takes_the_first_k_sites_from_the_subject():
  cfg = _cfg('mstrnn')
  sites = bn_probe.bn_sites(cfg)
  pop, sub = _tree(cfg, 1.0), _tree(cfg, 2.0)
  for k in range(len(sites) + 1):
    out = bn_probe.splice(pop, sub, sites, k)
    for i, (_, group) in enumerate(sites):
      for module, key in group:
        assert float(out[module][key]['mean'][0, 0]) == (2.0 if i < k else 1.0)
  assert pop['context_layer1']['bn_k']['mean'][0, 0] == 1.0  # the inputs are not changed


def test_shift_of_known_statistics():
  cfg = _cfg('lrcn')
  sites = bn_probe.bn_sites(cfg)
  pop = jax.tree_util.tree_map_with_path(
    lambda p, x: np.full_like(x, 4.0 if p[-1].key == 'var' else 1.0), _tree(cfg, 0.0)
  )
  same = bn_probe.shift(pop, pop, sites, steps=3, eps=0.0)
  assert all(v['mean'] == 0 and v['log_var'] == 0 for v in same.values())
  # Subject: mean 2 (one population std of 2 away: 0.5), variance 4 e^2 (log ratio 2), but only
  # on the first 3 of 4 steps; the 4th step (beyond `steps`) must not count.
  sub = jax.tree_util.tree_map_with_path(
    lambda p, x: np.concatenate(
      [np.full_like(x[:3], 4 * np.e**2 if p[-1].key == 'var' else 2.0), x[3:] + 100.0]
    ),
    pop,
  )
  for v in bn_probe.shift(sub, pop, sites, steps=3, eps=0.0).values():
    np.testing.assert_allclose([v['mean'], v['log_var']], [0.5, 2.0], rtol=1e-5)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp('run'))
  plan = fake_workdir.make(wd, MODELS, population=True, live_bn=True, validation_subjects=0)
  return wd, plan


def _predictions(ds, run, r, subject, stats, train, stats_run=None):
  """Voted classes of run ``r`` on ``subject``'s videos by ``models.apply``: eval mode with
  ``stats`` (its run ``stats_run``, default ``r``), or a training-mode pass on them as one
  batch (their own statistics)."""
  idx = np.nonzero(ds.subjects == subject)[0]
  x = pipeline.to_float(pipeline.center_crop(jnp.asarray(ds.videos[idx]), ds.crop_size))
  taus = jnp.asarray(run.runs[r]['taus'], jnp.float32)
  at = functools.partial(jax.tree.map, lambda a: a[r])
  stats = jax.tree.map(lambda a: a[r if stats_run is None else stats_run], stats)
  logits = models.apply(run.model_cfg, at(run.params), stats, x, taus, train=train).logits
  voting_steps = run.experiment['experiment']['voting_steps']
  return np.asarray(evaluate.predict(logits['action'][:, -voting_steps:]))


def test_splice_ends_and_own_accuracy_match_models_apply(workdir, monkeypatch):
  """Splice k = 0: eval-mode apply with the population statistics; k = n: a training-mode apply
  on the held-out subject's videos as one batch (it normalises with their own statistics).
  The training subject's own accuracy likewise. Random weights predict one class for every
  video under the population statistics, so the labels are replaced by what each fold's run
  predicts for its held-out subject under its own statistics (k = n must then score 100%)."""
  wd, plan = workdir
  for m in MODELS:
    run = checkpoint.load_run(wd, m)
    labels = np.array(plan.dataset.labels['action'])
    for r, info in enumerate(run.runs):
      s = info['test_subject']
      labels[plan.dataset.subjects == s] = _predictions(
        plan.dataset, run, r, s, run.running_stats, True
      )
    ds = dataclasses.replace(plan.dataset, labels={'action': labels})
    monkeypatch.setattr(analysis, 'load_workdir_data', lambda record, data_dir, ds=ds: ds)
    result = bn_probe.probe_workdir(wd, m)
    assert result['sites'] == [name for name, _ in bn_probe.bn_sites(run.model_cfg)]
    ends = np.zeros((len(run.runs), 2))
    for r, info in enumerate(run.runs):
      test, other = info['test_subject'], 1 - info['test_subject']
      got = result['runs'][r]
      for k, (stats, train) in enumerate(((run.batch_stats, False), (run.running_stats, True))):
        pred = _predictions(ds, run, r, test, stats, train)
        ends[r, k] = 100 * np.mean(pred == labels[ds.subjects == test])
        assert got['accuracy'][-k] == pytest.approx(ends[r, k], abs=1e-4)
        pred = _predictions(ds, run, r, other, stats, train)
        own = got['own_accuracy']['training'][bn_probe.MODES[k]]
        assert own == pytest.approx(100 * np.mean(pred == labels[ds.subjects == other]), abs=1e-4)
      assert ends[r, 1] == 100 and ends[r, 0] < 50
      assert got['own_accuracy']['validation'] is None and got['shift']['validation'] is None
      assert got['unseen'] is None and got['shift']['test_from_validation'] is None
      assert set(got['shift']['test']) == set(result['sites'])
      assert all(v['mean'] >= 0 and v['log_var'] >= 0 for v in got['shift']['test'].values())
    assert result['reported'] == {}  # no results.json yet
    # results.json's accuracies at the checkpoint's epoch (1), head and joint: the table says
    # whether the probe's two ends recompute them.
    history = {
      f'test_acc_{mode}': [[[a, a], [0.0, 0.0]] for a in ends[:, col]]
      for col, mode in enumerate(bn_probe.MODES)
    }
    path = os.path.join(wd, 'results.json')
    with open(path, 'w') as f:
      json.dump({'experiment': {}, 'models': {m: {'history': history}}}, f)
    try:
      table = bn_probe.splice_table(bn_probe.probe_workdir(wd, m))
    finally:
      os.remove(path)
    for mode in bn_probe.MODES:
      assert f'`{mode}`: ' in table
    assert table.count('(the probe recomputes it exactly on 2 of 2 folds)') == 2
    assert 'training subjects, their own joint accuracy: `population` ' in table


def test_unseen_statistics_are_the_other_unseen_subjects(tmp_path, monkeypatch):
  """Three subjects per fold (held-out, validation, training). Each subject's labels are what
  the run holding it out predicts for it under its validation subject's statistics, computed
  here with `train.subject_statistics` and an eval-mode `models.apply`: the held-out row under
  `unseen` statistics must score 100, and differ from what its own (`subject`) statistics
  score somewhere. The mirror, each validation subject under the held-out subject's statistics,
  is recomputed the same way."""
  wd = str(tmp_path / 'run')
  plan = fake_workdir.make(
    wd,
    MODELS,
    population=True,
    live_bn=True,
    validation_subjects=1,
    **{'data.synth3a.num_subjects': 3},
  )
  ds = plan.dataset
  names = list(ds.subject_names)
  videos = jnp.asarray(ds.videos)
  for m in MODELS:
    run = checkpoint.load_run(wd, m)
    fns = train.model_fns(run.model_cfg)

    def statistics(r, subject, run=run, fns=fns):
      """Run r's per-step statistics of ``subject``'s videos as one batch."""
      at = functools.partial(jax.tree.map, lambda a: a[r])
      params, taus = at(run.params), jnp.asarray(run.runs[r]['taus'], jnp.float32)
      rows = jnp.asarray(np.nonzero(ds.subjects == subject)[0], jnp.int32)
      return train.subject_statistics(
        fns, params, at(run.running_stats), videos, rows, jnp.ones(len(rows), bool), taus
      )

    def predict(r, subject, stats_of, run=run):
      """Run r's voted classes on ``subject`` normalised with ``stats_of``'s statistics."""
      stats = jax.tree.map(lambda a: a[None], statistics(r, stats_of))
      return _predictions(ds, run, r, subject, stats, False, stats_run=0)

    pairs = [(int(i['test_subject']), names.index(i['validation_subjects'][0])) for i in run.runs]
    assert sorted(t for t, _ in pairs) == [0, 1, 2] and all(t != v for t, v in pairs)
    labels = np.array(ds.labels['action'])
    for r, (test, val) in enumerate(pairs):
      labels[ds.subjects == test] = predict(r, test, val)
    labelled = dataclasses.replace(ds, labels={'action': labels})
    monkeypatch.setattr(analysis, 'load_workdir_data', lambda record, data_dir, d=labelled: d)
    result = bn_probe.probe_workdir(wd, m)
    for r, (test, val) in enumerate(pairs):
      u = result['runs'][r]['unseen']
      assert u['test']['unseen'] == pytest.approx(100.0, abs=1e-4)
      assert u['test']['subject'] == pytest.approx(result['runs'][r]['accuracy'][-1], abs=1e-4)
      assert u['test']['population'] == pytest.approx(result['runs'][r]['accuracy'][0], abs=1e-4)
      mirror = 100 * np.mean(predict(r, val, test) == labels[ds.subjects == val])
      assert u['validation']['unseen'] == pytest.approx(mirror, abs=1e-4)
      own = result['runs'][r]['own_accuracy']['validation']
      assert {k: u['validation'][k] for k in bn_probe.MODES} == own
      apart = bn_probe.shift(
        statistics(r, test),
        statistics(r, val),
        bn_probe.bn_sites(run.model_cfg),
        ds.videos.shape[1],
        run.model_cfg.bn_epsilon,
      )
      for name, got in result['runs'][r]['shift']['test_from_validation'].items():
        np.testing.assert_allclose(
          [got['mean'], got['log_var']],
          [apart[name]['mean'], apart[name]['log_var']],
          rtol=1e-4,
          atol=1e-6,
        )
    assert min(r['unseen']['test']['subject'] for r in result['runs']) < 100
    table = bn_probe.unseen_table(result)
    assert "| held-out subject, with the validation subjects' statistics | " in table
    assert table in bn_probe.markdown(result)


def test_cli_writes_files_and_never_overwrites(workdir):
  wd, _ = workdir
  out = os.path.join(wd, 'probe_out')
  cmd = [
    sys.executable,
    os.path.join(subproc.ROOT, 'experiments', 'bn_probe.py'),
    f'--workdir={wd}',
    '--model=lrcn',
    f'--out_dir={out}',
  ]
  proc = subprocess.run(cmd, capture_output=True, text=True, env=subproc.cpu_env())
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'bn probe lrcn' in proc.stderr and '2/2' in proc.stderr  # the progress bar over folds
  assert '| subject statistics up to | joint accuracy |' in proc.stdout
  assert '| lstm2 | lstm2.bn_c, lstm2.bn_h, lstm2.bn_x |' in proc.stdout
  with open(os.path.join(out, 'bn_probe.json')) as f:
    res = json.load(f)
  assert res['model'] == 'lrcn' and len(res['runs']) == 2
  assert all(len(r['accuracy']) == 7 for r in res['runs'])
  assert os.path.getsize(os.path.join(out, 'bn_probe.png')) > 0
  again = subprocess.run(cmd, capture_output=True, text=True, env=subproc.cpu_env())
  assert again.returncode == 1
  assert 'bn_probe.json exists; choose another --out_dir' in again.stderr
  bad = subprocess.run(
    [cmd[0], cmd[1], f'--workdir={out}'], capture_output=True, text=True, env=subproc.cpu_env()
  )
  assert bad.returncode == 1 and 'is not a workdir written by' in bad.stderr


NOISE = {'data.synth3a.noise_std': 0.3}  # another draw of the same videos: other pixel noise


def test_held_out_videos_of_another_draw(workdir, monkeypatch):
  """``test_overrides``: the held-out subject's numbers come from the rebuilt dataset's videos
  (here with other pixel noise), every other subject's from the workdir's. Labels are what
  each fold's run predicts for its held-out subject's rebuilt videos under their own
  statistics, so the all-subject end must score 100 on them; the population end is an
  eval-mode apply on them; the training subject's own accuracy is the plain probe's."""
  wd, plan = workdir
  ds = plan.dataset
  for m in MODELS:
    run = checkpoint.load_run(wd, m)
    variant, info = bn_probe.variant_data(run.experiment, None, NOISE, ds)
    assert info == {'overrides': NOISE, 'cut_videos': 0, 'frames': ds.videos.shape[1]}
    assert variant.videos.shape == ds.videos.shape and not np.array_equal(variant.videos, ds.videos)
    labels = np.array(ds.labels['action'])
    for r, info in enumerate(run.runs):
      s = info['test_subject']
      labels[ds.subjects == s] = _predictions(variant, run, r, s, run.running_stats, True)
    own = dataclasses.replace(ds, labels={'action': labels})
    other = dataclasses.replace(variant, labels={'action': labels})

    def load(record, data_dir, own=own, other=other):
      noise = record['experiment']['data']['synth3a']['noise_std']
      return other if noise == NOISE['data.synth3a.noise_std'] else own

    monkeypatch.setattr(analysis, 'load_workdir_data', load)
    plain = bn_probe.probe_workdir(wd, m)
    result = bn_probe.probe_workdir(wd, m, test_overrides=NOISE)
    assert plain['test_data'] is None and result['test_data']['overrides'] == NOISE
    for r, info in enumerate(run.runs):
      test = info['test_subject']
      got = result['runs'][r]
      assert got['accuracy'][-1] == pytest.approx(100.0, abs=1e-4)
      pred = _predictions(variant, run, r, test, run.batch_stats, False)
      assert got['accuracy'][0] == pytest.approx(100 * np.mean(pred == labels[ds.subjects == test]))
      assert got['own_accuracy']['training'] == plain['runs'][r]['own_accuracy']['training']
    assert [r['accuracy'] for r in result['runs']] != [r['accuracy'] for r in plain['runs']]
    assert 'Held-out videos from the dataset with `data.synth3a.noise_std=0.3`' in (
      bn_probe.splice_table(result)
    )
    monkeypatch.undo()


def test_rebuilt_dataset_is_fitted_to_the_workdir_or_refused(workdir, monkeypatch):
  """Shorter videos are extended with their last frame, longer ones cut (and counted); settings
  outside data.*, unknown fields and datasets with other labels are one-line errors naming the
  flag."""
  wd, plan = workdir
  ds = plan.dataset
  t = ds.videos.shape[1]
  record = checkpoint.load_run(wd, 'lrcn').experiment
  shorter = dataclasses.replace(
    ds, videos=ds.videos[:, : t - 2], lengths=np.minimum(ds.lengths, t - 2)
  )
  longer = dataclasses.replace(
    ds,
    videos=np.concatenate([ds.videos, 255 - ds.videos[:, -1:]], 1),
    lengths=np.where(np.arange(len(ds.lengths)) % 2 == 0, t + 1, ds.lengths),
  )
  relabelled = dataclasses.replace(ds, labels={'action': (ds.labels['action'] + 1) % 27})
  for variant, check in (
    (shorter, lambda v: np.array_equal(v[:, t - 3 :], np.repeat(shorter.videos[:, -1:], 3, 1))),
    (longer, lambda v: np.array_equal(v, ds.videos)),
  ):
    monkeypatch.setattr(analysis, 'load_workdir_data', lambda r, d, v=variant: v)
    got, info = bn_probe.variant_data(record, None, NOISE, ds)
    assert got.videos.shape == ds.videos.shape and check(got.videos)
    assert got.lengths.max() <= t
    assert info['cut_videos'] == (int(np.sum(longer.lengths > t)) if variant is longer else 0)
  monkeypatch.setattr(analysis, 'load_workdir_data', lambda r, d: relabelled)
  flag = '--test_override=data.synth3a.noise_std=0.3: '
  with pytest.raises(ValueError, match=flag + 'its dataset has other subjects, labels'):
    bn_probe.variant_data(record, None, NOISE, ds)
  with pytest.raises(ValueError, match='give data settings only'):
    bn_probe.variant_data(record, None, {'width_scale': 0.5}, ds)
  with pytest.raises(
    ValueError, match='--test_override=data.synth3a.colour=1: config has no field'
  ):
    bn_probe.variant_data(record, None, {'data.synth3a.colour': 1}, ds)


def test_cli_held_out_videos_of_another_draw(workdir):
  """--test_override: its own default output folder, the setting in the JSON and the table; a
  malformed setting is a one-line error."""
  wd, _ = workdir
  script = os.path.join(subproc.ROOT, 'experiments', 'bn_probe.py')
  cmd = [sys.executable, script, f'--workdir={wd}', '--model=lrcn']
  proc = subprocess.run(
    cmd + ['--test_override=data.synth3a.noise_std=0.3'],
    capture_output=True,
    text=True,
    env=subproc.cpu_env(),
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Held-out videos from the dataset with `data.synth3a.noise_std=0.3`' in proc.stdout
  out = os.path.join(wd, 'bn_probe', 'lrcn', 'test_data.synth3a.noise_std=0.3')
  with open(os.path.join(out, 'bn_probe.json')) as f:
    assert json.load(f)['test_data']['overrides'] == NOISE
  bad = subprocess.run(
    cmd + ['--test_override=noise'], capture_output=True, text=True, env=subproc.cpu_env()
  )
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines() == [
    'error: --test_override=noise: expected field=value, e.g. --test_override=data.synth3a.seed=1.'
  ]


def test_probe_pairs_differences_by_test_subject(tmp_path):
  """benchmarks/probe_pairs.py: A - B at both ends over the test subjects both hold (B lists
  them in another order and has one more), with mean ± SE and the one-SE verdict."""

  def write(name, runs):
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps({'runs': [{'test_subject': s, 'accuracy': acc} for s, acc in runs]}))
    return f'{name}={path}'

  a = write('a', [('s1', [50.0, 1.0, 90.0]), ('s2', [70.0, 2.0, 80.0])])
  b = write('b', [('s3', [0.0, 0.0, 0.0]), ('s2', [60.0, 9.0, 80.0]), ('s1', [30.0, 9.0, 70.0])])
  script = os.path.join(subproc.ROOT, 'benchmarks', 'probe_pairs.py')
  proc = subprocess.run(
    [sys.executable, script, a, b, '--diff=a-b'], capture_output=True, text=True
  )
  assert proc.returncode == 0, proc.stderr
  # population: 20 and 10 -> 15 ± 5; subject: 20 and 0 -> 10 ± 10
  assert (
    '| a - b | 15.00±5.00 (beyond 1 SE, positive; 2 of 2 at least level) | '
    '10.00±10.00 (within 1 SE; 2 of 2 at least level) |'
  ) in proc.stdout
  assert '| b | 3 | 30.00±17.32 | 50.00±25.17 |' in proc.stdout
  bad = subprocess.run([sys.executable, script, a, b, '--diff=a-c'], capture_output=True, text=True)
  assert bad.returncode == 1 and "--diff=a-c: name two of ['a', 'b'] as A-B." in bad.stderr


def test_probe_pairs_shift_table_pairs_sites_by_test_subject(tmp_path):
  """probe_pairs.py --shift: per site, B's and A's mean shift and A - B paired by fold, for the
  held-out and training subjects under both measures."""

  def write(name, runs):
    def shift(x):
      return {'fc1': {'mean': x, 'log_var': 2 * x}}

    body = [
      {'test_subject': s, 'accuracy': [0.0, 0.0], 'shift': {'test': shift(t), 'training': shift(r)}}
      for s, t, r in runs
    ]
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps({'runs': body}))
    return f'{name}={path}'

  a = write('a', [('s1', 0.5, 0.1), ('s2', 0.3, 0.1)])
  b = write('b', [('s2', 0.2, 0.1), ('s1', 0.2, 0.2)])
  script = os.path.join(subproc.ROOT, 'benchmarks', 'probe_pairs.py')
  proc = subprocess.run(
    [sys.executable, script, a, b, '--diff=a-b', '--shift'], capture_output=True, text=True
  )
  assert proc.returncode == 0, proc.stderr
  # held-out mean: 0.3 and 0.1 -> 0.2 ± 0.1; training mean: -0.1 and 0 -> -0.05 ± 0.05
  assert (
    '| fc1 | 0.20 -> 0.40 (0.20±0.10) | 0.15 -> 0.10 (-0.05±0.05) | 0.40 -> 0.80 (0.40±0.20) '
    '| 0.30 -> 0.20 (-0.10±0.10) |'
  ) in proc.stdout
