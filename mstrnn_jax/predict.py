"""Predict with a trained run: per-frame class probabilities and the voting-period decision.

    result = predict.predict('runs/RUN', 'clip.avi')               # ensemble of every fold
    result = predict.predict('runs/RUN', 'clips/', fold=2)          # fold 2's model, every clip
    print(predict.format_table(result))
    predict.write_outputs(result, 'out/')                           # predictions.json / .csv

A clip is decoded and centre-cropped exactly as the run's evaluation saw its data: the frame size
of the stored dataset, for ``folder:PATH`` runs its frame rate / step options
(``data.builders.common.decode``), then ``pipeline.center_crop``.  The model runs frame by frame
with the streaming ``models.step`` (a jitted scan over time, vmapped over the runs), so a clip of
any length works: steps past the trained length use the BN statistics of the last stored step.
With several runs (``ensemble``) the per-frame probabilities are averaged over the runs.  The
decision per head applies the run's voting rule to the last ``voting_steps`` frames (all frames
of a shorter clip).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import os
import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mstrnn_jax import checkpoint, evaluate, models
from mstrnn_jax.data import pipeline
from mstrnn_jax.data.builders import common
from mstrnn_jax.workdir import write_atomic


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """How a run's clips were decoded: frames area-resized to ``frame_size``, every
  ``round(fps_of_file / fps)``-th frame (None: all), then every ``frame_step``-th, then the
  centre ``crop_size`` square."""

  frame_size: int
  crop_size: int
  fps: float | None = None
  frame_step: int = 1


def preprocessing(record: dict) -> Preprocessing:
  """The preprocessing of the run recorded in ``record`` (experiment.json)."""
  summary = record['dataset_summary']
  kwargs = record.get('dataset_kwargs', {})
  fps, step = None, 1
  if pipeline.is_folder(record['dataset']):
    fps, step = kwargs.get('fps'), int(kwargs.get('frame_step', 1))
  return Preprocessing(
    frame_size=int(summary['videos'][2]),
    crop_size=int(summary['crop_size']),
    fps=fps,
    frame_step=step,
  )


def class_names(record: dict, data_dir: str | None = None) -> dict[str, list[str]]:
  """head -> class names of the run (experiment.json; older workdirs: the dataset's spec)."""
  names = record['dataset_summary'].get('class_names')
  if names is None:
    spec = pipeline.dataset_spec(record['dataset'], data_dir, **record.get('dataset_kwargs', {}))
    names = spec.class_names
  return {h: list(names[h]) for h, _ in record['dataset_summary']['heads']}


def find_clips(path: str) -> list[pathlib.Path]:
  """``path`` itself (a video file or a folder of frame images), else every video file and
  frame folder under it, in natural name order."""
  root = pathlib.Path(path).expanduser()
  if not root.exists():
    raise FileNotFoundError(
      f'--video: {root} does not exist (give a video file, a folder of '
      'frame images, or a folder of clips).'
    )
  if root.is_file():
    if root.suffix.lower() not in common.VIDEO_EXTENSIONS:
      raise ValueError(f'--video: {root} is not a video ({" ".join(common.VIDEO_EXTENSIONS)}).')
    return [root]
  if _is_frame_folder(root):
    return [root]
  natural = common._natural_key  # pylint: disable=protected-access
  clips = sorted(
    (
      p
      for p in root.rglob('*')
      if (p.is_file() and p.suffix.lower() in common.VIDEO_EXTENSIONS)
      or (p.is_dir() and _is_frame_folder(p))
    ),
    key=lambda p: [natural(pathlib.Path(part)) for part in p.relative_to(root).parts],
  )
  if not clips:
    raise ValueError(
      f'--video: {root} holds no video ({" ".join(common.VIDEO_EXTENSIONS)}) '
      'and no folder of frame images.'
    )
  return clips


def _is_frame_folder(folder: pathlib.Path) -> bool:
  return any(p.suffix.lower() in common.IMAGE_EXTENSIONS for p in folder.iterdir())


def read_clip(path: pathlib.Path, prep: Preprocessing) -> np.ndarray:
  """uint8 ``[T, frame_size, frame_size, 3]``: the clip decoded like the run's training data."""
  size = (prep.frame_size, prep.frame_size)
  return common.decode(common.Clip(pathlib.Path(path)), size, prep.fps, prep.frame_step, None)


def select_runs(runs: list[dict], fold: int | None, taus: Sequence[float] | None) -> list[int]:
  """Rows of ``runs`` to use: one tau tuple (``taus``, default the first), every fold or
  ``fold``'s (the run holding out that subject / fold number)."""
  tau_keys = list(dict.fromkeys(tuple(r['taus']) for r in runs))
  key = tau_keys[0] if taus is None else tuple(float(t) for t in taus)
  if key not in tau_keys:
    raise ValueError(
      f'--taus={",".join(map(str, key))} was not trained; the run has '
      f'{[list(k) for k in tau_keys]}.'
    )
  rows = [i for i, r in enumerate(runs) if tuple(r['taus']) == key]
  if fold is None:
    return rows
  folds = [runs[i]['test_subject'] for i in rows]
  if fold not in folds:
    raise ValueError(
      f'--fold={fold}: the run has folds {sorted(folds)} (the held-out subject '
      'or fold number of each run).'
    )
  return [rows[folds.index(fold)]]


@functools.partial(jax.jit, static_argnames=('cfg',))
def frame_probabilities(cfg, params, batch_stats, taus: jax.Array, frames: jax.Array) -> dict:
  """Per-frame softmax probabilities of every run, streaming over time with ``models.step``.

  Args:
    params, batch_stats: leaves with a leading run axis R.
    taus: float32 [R, n_taus].
    frames: float32 [T, crop, crop, 3] in [0, 1].
  Returns:
    head -> float32 [R, T, classes].
  """

  def one_run(p, s, tau):
    def body(state, xs):
      t, frame = xs
      state, logits = models.step(cfg, p, s, state, frame[None], tau, t)
      return state, {h: jax.nn.softmax(lg[0].astype(jnp.float32)) for h, lg in logits.items()}

    state = models.initial_state(cfg, p, 1)
    _, probs = jax.lax.scan(body, state, (jnp.arange(frames.shape[0]), frames))
    return probs

  return jax.vmap(one_run)(params, batch_stats, taus)


def _padded_length(t: int) -> int:
  """Frames are padded to a power of two (>= 16) so clips of similar length share a compile; the
  model is causal, so the padding never changes the frames before it."""
  return max(16, 1 << (t - 1).bit_length())


def clip_probabilities(
  loaded: checkpoint.LoadedRun, rows: list[int], video: np.ndarray, crop_size: int
) -> dict[str, np.ndarray]:
  """head -> float32 [R, T, classes] for uint8 ``video`` [T, H, W, 3] and the runs ``rows``."""
  t = video.shape[0]
  x = pipeline.to_float(pipeline.center_crop(video[None], crop_size))[0]
  x = jnp.pad(x, ((0, _padded_length(t) - t), (0, 0), (0, 0), (0, 0)), mode='edge')
  take = lambda tree: jax.tree.map(lambda a: a[np.asarray(rows)], tree)
  taus = np.asarray([loaded.runs[r]['taus'] for r in rows], np.float32).reshape(len(rows), -1)
  probs = frame_probabilities(
    loaded.model_cfg, take(loaded.params), take(loaded.batch_stats), jnp.asarray(taus), x
  )
  return {h: np.asarray(p)[:, :t] for h, p in probs.items()}


def decide(probs: np.ndarray, voting_steps: int, rule: str) -> int:
  """The voting-period class of per-frame probabilities [T, classes] (``evaluate.predict``)."""
  period = np.log(np.maximum(probs[-voting_steps:], 1e-30))
  return int(evaluate.predict(jnp.asarray(period), rule))


def predict(
  workdir: str,
  video: str,
  *,
  model: str | None = None,
  fold: int | None = None,
  taus: Sequence[float] | None = None,
  epoch: int | None = None,
  data_dir: str | None = None,
) -> dict:
  """Runs the trained ``model`` of ``workdir`` on every clip of ``video``.

  ``fold`` None: the ensemble of every fold's model (probabilities averaged); else that fold's.
  Returns a JSON-able dict: the run, the class names and per clip its frames, the probabilities
  (head -> [T][classes], averaged over the runs used) and the decision per head.
  """
  loaded = checkpoint.load_run(workdir, model, epoch)
  record = loaded.experiment
  prep = preprocessing(record)
  names = class_names(record, data_dir)
  rows = select_runs(loaded.runs, fold, taus)
  experiment = record['experiment']
  voting_steps, rule = int(experiment['voting_steps']), str(experiment['vote_rule'])
  clips = []
  root = pathlib.Path(video).expanduser()
  for path in find_clips(video):
    frames = read_clip(path, prep)
    probs = {
      h: p.mean(axis=0) for h, p in clip_probabilities(loaded, rows, frames, prep.crop_size).items()
    }
    steps = min(voting_steps, len(frames))
    decision = {h: names[h][decide(p, steps, rule)] for h, p in probs.items()}
    name = path.name if path == root else path.relative_to(root).as_posix()
    clips.append(
      {
        'path': str(path),
        'name': name,
        'frames': len(frames),
        'voting_steps': steps,
        'decision': decision,
        'voting_period_probability': {
          h: p[-steps:].mean(axis=0).tolist() for h, p in probs.items()
        },
        'probabilities': {h: p.tolist() for h, p in probs.items()},
      }
    )
  return {
    'workdir': os.path.abspath(workdir),
    'dataset': record['dataset'],
    'model': loaded.model_cfg.model,
    'epoch': loaded.epoch,
    'bn_statistics': loaded.stats_mode,
    'runs': [loaded.runs[r] for r in rows],
    'ensemble': len(rows) > 1,
    'vote_rule': rule,
    'preprocessing': dataclasses.asdict(prep),
    'class_names': names,
    'clips': clips,
  }


def format_table(result: dict, frames: bool = True) -> str:
  """The decisions (one row per clip) and, with ``frames``, every clip's per-frame
  probabilities (one column per class of every head)."""
  names = result['class_names']
  heads = list(names)
  runs = result['runs']
  who = (
    f'ensemble of {len(runs)} folds'
    if result['ensemble']
    else f'fold {runs[0]["test_subject"]} (held out {runs[0]["subject_name"]})'
  )
  out = [
    (
      f'{result["model"]} from {result["workdir"]} (epoch {result["epoch"]}, {who}, '
      f'rule {result["vote_rule"]})'
    ),
    '',
    '| clip | frames | ' + ' | '.join(heads) + ' |',
    '|---|---|' + '---|' * len(heads),
  ]
  for c in result['clips']:
    chosen = {h: names[h].index(c['decision'][h]) for h in heads}
    cells = [
      f'{c["decision"][h]} ({c["voting_period_probability"][h][chosen[h]]:.2f})' for h in heads
    ]
    out.append(f'| {c["name"]} | {c["frames"]} | ' + ' | '.join(cells) + ' |')
  if frames:
    cols = [f'{h}:{k}' if len(heads) > 1 else k for h in heads for k in names[h]]
    for c in result['clips']:
      out += [
        '',
        f'{c["name"]} (voting period: the last {c["voting_steps"]} frames)',
        '',
        '| frame | ' + ' | '.join(cols) + ' |',
        '|---|' + '---|' * len(cols),
      ]
      for t in range(c['frames']):
        probs = [p for h in heads for p in c['probabilities'][h][t]]
        out.append(f'| {t} | ' + ' | '.join(f'{p:.3f}' for p in probs) + ' |')
  return '\n'.join(out)


def to_csv(result: dict) -> str:
  """One row per clip and frame: clip, frame, in_voting_period, one column ``head:class`` per
  class of every head."""
  names = result['class_names']
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(['clip', 'frame', 'in_voting_period'] + [f'{h}:{k}' for h in names for k in names[h]])
  for c in result['clips']:
    for t in range(c['frames']):
      w.writerow(
        [c['path'], t, int(t >= c['frames'] - c['voting_steps'])]
        + [f'{p:.6f}' for h in names for p in c['probabilities'][h][t]]
      )
  return buf.getvalue()


def write_outputs(result: dict, out_dir: str) -> dict[str, str]:
  """Writes ``predictions.json`` and ``predictions.csv`` into ``out_dir``; returns the paths."""
  os.makedirs(out_dir, exist_ok=True)
  files = {
    'json': os.path.join(out_dir, 'predictions.json'),
    'csv': os.path.join(out_dir, 'predictions.csv'),
  }
  write_atomic(files['json'], json.dumps(result, indent=1))
  write_atomic(files['csv'], to_csv(result))
  return files


def write_figure(result: dict, out: str) -> list[str]:
  """Draws every clip's probabilities under a strip of its frames into ``out`` (.png, or .gif
  animated over the frames); with several clips ``out`` gets the clip's name appended."""
  from mstrnn_jax import plots  # pylint: disable=import-outside-toplevel

  base, ext = os.path.splitext(out)
  if ext.lower() not in ('.png', '.gif'):
    raise ValueError(f'--out={out}: give a .png or .gif file.')
  prep = Preprocessing(**result['preprocessing'])
  written = []
  for c in result['clips']:
    label = os.path.splitext(c['name'])[0].replace('/', '-')
    path = out if len(result['clips']) == 1 else f'{base}-{label}{ext}'
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    frames = np.asarray(
      pipeline.center_crop(read_clip(pathlib.Path(c['path']), prep)[None], prep.crop_size)
    )[0]
    probs = {h: np.asarray(p) for h, p in c['probabilities'].items()}
    title = f'{c["name"]}: ' + ', '.join(f'{h} = {k}' for h, k in c['decision'].items())
    if ext.lower() == '.png':
      plots.save(
        plots.plot_prediction(frames, probs, result['class_names'], c['voting_steps'], title=title),
        path,
      )
    else:
      plots.save_prediction_gif(
        frames, probs, result['class_names'], c['voting_steps'], path, title=title
      )
    written.append(path)
  return written
