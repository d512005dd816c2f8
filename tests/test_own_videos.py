"""Your own videos end to end: a folder of clips -> the tiny preset through the CLI -> predict."""

import csv
import json
import os

import jax
import numpy as np
import pytest
from absl import flags

from mstrnn_jax import (
  analysis,
  checkpoint,
  cli,
  launch,
  models,
  names,
  predict,
  stream_loop,
)
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.data import pipeline, stream, toy_videos

CLASSES = ('left', 'right')  # the same frames in opposite order: only time tells them apart


def _config(*args):
  fv, argv = flags.FlagValues(), ['run.py', *args]
  cli.define_flags(dataset='synth3a', models=names.MODELS + ('all',), flag_values=fv, argv=argv)
  fv(argv)
  return cli.resolve_config(fv)


def _json(*path):
  with open(os.path.join(*path)) as f:
    return json.load(f)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A 4-subject folder trained with the tiny preset, subjects grouped into 2 folds."""
  tmp = tmp_path_factory.mktemp('own')
  root = toy_videos.make_folder(tmp / 'moving', subjects=4, classes=CLASSES, clips_per_class=1)
  config = _config(f'--dataset=folder:{root}', '--preset=tiny', '--epochs=1', '--config.folds=2')
  workdir = str(tmp / 'run')
  launch.launch(
    config, workdir=workdir, data_dir=str(tmp / 'data'), progress=False, log=lambda s: None
  )
  return root, workdir, tmp


def test_folder_config_fields_and_presets(tmp_path):
  config = _config(
    f'--dataset=folder:{tmp_path}',
    '--preset=tiny',
    '--config.data.folder.fps=5',
    '--config.folds=3',
  )
  assert config.dataset == f'folder:{tmp_path.resolve()}' and config.folds == 3
  assert ec.dataset_kwargs(config) == {
    'frame_size': 36,
    'crop_margin': 4,
    'fps': 5.0,
    'frame_step': 1,
    'skip_bad_clips': False,
  }
  assert ec.default_preset(f'folder:{tmp_path}') == 'quick'
  for preset in ec.PRESETS:
    assert ec.get_config(preset, f'folder:{tmp_path}').data.folder.frame_step == 1
  assert ec.dataset_label(config.dataset) == f'folder-{tmp_path.name}'


def test_training_on_a_folder_writes_fold_runs(trained):
  _, workdir, _ = trained
  record = _json(workdir, 'experiment.json')
  assert [r['subject_name'] for r in record['runs']] == ['subject0+subject1', 'subject2+subject3']
  assert record['dataset_summary']['class_names'] == {'class': list(CLASSES)}
  results = _json(workdir, 'results.json')
  assert len(results['models']['mstrnn']['runs']) == 2


def test_predict_one_clip_names_classes_and_writes_files(trained, tmp_path):
  root, workdir, _ = trained
  clip = root / 'subject0' / 'right' / 'clip0.avi'
  result = predict.predict(workdir, str(clip))
  assert result['class_names'] == {'class': list(CLASSES)} and result['ensemble']
  (c,) = result['clips']
  probs = np.asarray(c['probabilities']['class'])
  assert probs.shape == (8, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
  assert c['decision']['class'] in CLASSES and c['voting_steps'] == 3
  files = predict.write_outputs(result, str(tmp_path))
  assert _json(files['json'])['clips'][0]['decision'] == c['decision']
  with open(files['csv']) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 8 and set(rows[0]) == {
    'clip',
    'frame',
    'in_voting_period',
    'class:left',
    'class:right',
  }
  table = predict.format_table(result)
  assert 'left' in table and 'right' in table and 'ensemble of 2 folds' in table
  figures = predict.write_figure(result, str(tmp_path / 'p.png'))
  figures += predict.write_figure(result, str(tmp_path / 'p.gif'))
  assert all(os.path.getsize(f) > 1000 for f in figures)


def test_ensemble_is_the_mean_of_the_folds(trained):
  root, workdir, _ = trained
  clip = str(root / 'subject3' / 'left' / 'clip0.avi')
  per_fold = [
    np.asarray(predict.predict(workdir, clip, fold=k)['clips'][0]['probabilities']['class'])
    for k in (0, 1)
  ]
  ensemble = np.asarray(predict.predict(workdir, clip)['clips'][0]['probabilities']['class'])
  np.testing.assert_allclose(ensemble, np.mean(per_fold, axis=0), atol=1e-6)
  assert predict.predict(workdir, clip, fold=1)['runs'][0]['subject_name'] == 'subject2+subject3'
  with pytest.raises(ValueError, match='--fold=5'):
    predict.predict(workdir, clip, fold=5)


def test_longer_clips_equal_the_full_sequence_model(trained):
  """A clip 3x the trained length: the streaming scan equals models.apply (stored BN
  statistics of the last step beyond the trained length)."""
  _, workdir, tmp = trained
  frames = toy_videos.moving_square('left', 24, 36, np.random.default_rng(7))
  clip = toy_videos.write_clip(tmp / 'long' / 'long.avi', frames)
  loaded = checkpoint.load_run(workdir)
  prep = predict.preprocessing(loaded.experiment)
  video = predict.read_clip(clip, prep)
  assert video.shape == (24, 36, 36, 3) and loaded.model_cfg.bn_steps == 8
  probs = predict.clip_probabilities(loaded, [1], video, prep.crop_size)['class'][0]
  x = pipeline.to_float(pipeline.center_crop(video[None], prep.crop_size))
  run = lambda tree: jax.tree.map(lambda a: a[1], tree)
  logits = models.apply(
    loaded.model_cfg,
    run(loaded.params),
    run(loaded.batch_stats),
    x,
    np.asarray(loaded.runs[1]['taus'], np.float32),
    False,
  ).logits['class']
  np.testing.assert_allclose(probs, np.asarray(jax.nn.softmax(logits[0])), atol=1e-5)
  result = predict.predict(workdir, str(tmp / 'long'))
  assert result['clips'][0]['frames'] == 24 and result['clips'][0]['name'] == 'long.avi'


def test_analysis_defaults_come_from_the_dataset_classes(trained):
  root, _, tmp = trained
  ds = pipeline.load_dataset(
    f'folder:{root}', data_dir=str(tmp / 'data'), frame_size=36, crop_margin=4
  )
  grouped = analysis.by_fold(ds, 2)
  assert grouped.subject_names == ['subject0+subject1', 'subject2+subject3']
  assert list(grouped.subjects) == [0, 0, 0, 0, 1, 1, 1, 1]
  names_ = analysis.video_names(ds.class_names, ds.labels)
  assert analysis.default_sequences(ds.name, names_, grouped.subjects, ds.labels) == list(CLASSES)
  assert analysis.default_sequences('synth3a', names_, ds.subjects, ds.labels)[0] == 'JP-JP-JP'


def test_predict_errors_name_the_flag(trained, tmp_path):
  _, workdir, _ = trained
  with pytest.raises(FileNotFoundError, match='--video'):
    predict.predict(workdir, str(tmp_path / 'missing.avi'))
  with pytest.raises(ValueError, match='--taus'):
    predict.predict(workdir, str(trained[0]), taus=(3.0, 50.0))


def test_streamed_training_equals_in_memory(trained, monkeypatch):
  """--config.stream=always reads every batch from the prepared files (BatchStream) and gives
  the in-memory run's history."""
  root, workdir, tmp = trained
  opened = []

  class Counting(stream.BatchStream):
    def __init__(self, *args, **kwargs):
      opened.append(1)
      super().__init__(*args, **kwargs)

  monkeypatch.setattr(stream, 'BatchStream', Counting)
  config = _config(
    f'--dataset=folder:{root}',
    '--preset=tiny',
    '--epochs=1',
    '--config.folds=2',
    '--config.stream=always',
    '--config.eval_stats=running',
  )
  out = str(tmp / 'streamed')
  launch.launch(config, workdir=out, data_dir=str(tmp / 'data'), progress=False, log=lambda s: None)
  assert len(opened) == 2  # one epoch: its training steps and the evaluation

  def history(w):
    return _json(w, 'results.json')['models']['mstrnn']['history']

  ours, theirs = history(out), history(workdir)
  np.testing.assert_allclose(ours['train_loss'], theirs['train_loss'], rtol=1e-5, atol=1e-6)
  assert ours['test_acc'] == theirs['test_acc_running'] and ours['train_acc'] == theirs['train_acc']


def test_stream_mode_choice(trained, tmp_path):
  root, _, tmp = trained
  base = [f'--dataset=folder:{root}', '--preset=tiny']
  load = lambda *a: stream_loop.load_folder(_config(*base, *a), str(tmp / 'data'))
  assert not stream_loop.is_streamed(load())
  assert stream_loop.is_streamed(
    load('--config.data_memory_budget_mib=0.1', '--config.eval_stats=running')
  )
  assert not stream_loop.is_streamed(
    load('--config.data_memory_budget_mib=0.1', '--config.stream=never')
  )
  lazy = load('--config.stream=always', '--config.eval_stats=running')
  with pytest.raises(ValueError, match='--config.eval_stats=running'):
    load('--config.stream=always')
  np.testing.assert_array_equal(lazy.videos[[3, 0]], load().videos[[3, 0]])
  with pytest.raises(ValueError, match='folder:PATH datasets only'):
    stream_loop.stream_mode(_config('--dataset=synth3a', '--config.stream=always'))


def test_preprocessing_follows_the_run():
  summary = {'videos': [9, 8, 36, 36, 3], 'crop_size': 32}
  assert predict.preprocessing(
    {'dataset': 'synth3a', 'dataset_summary': summary, 'dataset_kwargs': {'seed': 0}}
  ) == predict.Preprocessing(36, 32)
  folder = {
    'dataset': 'folder:/x',
    'dataset_summary': {**summary, 'videos': [9, 8, 64, 64, 3], 'crop_size': 58},
    'dataset_kwargs': {'frame_size': 64, 'fps': 10.0, 'frame_step': 2},
  }
  assert predict.preprocessing(folder) == predict.Preprocessing(64, 58, 10.0, 2)
