"""Prints what a dataset holds and where its files are.

python -m mstrnn_jax.data.describe --dataset=synth3a
python -m mstrnn_jax.data.describe --dataset=weizmann_3acwd --data_dir=/path/to/data
python -m mstrnn_jax.data.describe --dataset=folder:/my/videos --frame_size=64 --fps=10
"""

from __future__ import annotations

import collections
import sys

import numpy as np
from absl import app, flags

from mstrnn_jax.data import pipeline
from mstrnn_jax.data.dataset import Dataset, DatasetSpec


def _classes(names: list, limit: int = 8) -> str:
  shown = ', '.join(names[:limit])
  return shown + (f', ... ({len(names) - limit} more)' if len(names) > limit else '')


def format_spec(spec: DatasetSpec, location: str) -> str:
  """The static facts of a dataset (no videos needed)."""
  h, w = spec.frame_size
  lines = [
    f'dataset     {spec.name}: {spec.description}',
    f'kind        {"synthetic analogue (generated in memory)" if spec.synthetic else "real data"}',
    f'frames      {h}x{w}, crop {spec.crop_size}x{spec.crop_size} (model input)',
    f'T_max       {spec.t_max if spec.t_max is not None else "unknown until prepared"}',
    f'videos      {spec.num_videos if spec.num_videos is not None else "unknown until prepared"}'
    f' from {spec.num_subjects} subjects',
  ]
  for head, k in spec.heads:
    lines.append(f'head        {head}: {k} classes: {_classes(spec.class_names[head])}')
  lines.append(f'files       {location}')
  return '\n'.join(lines)


def format_dataset(ds: Dataset) -> str:
  """Counts that need the loaded arrays: videos per subject, per class, lengths."""
  per_subject = collections.Counter(ds.subjects.tolist())
  lines = [
    'per subject ' + ', '.join(f'{n}: {per_subject[i]}' for i, n in enumerate(ds.subject_names)),
    f'lengths     min {ds.lengths.min()}, mean {ds.lengths.mean():.1f}, max {ds.lengths.max()}'
    f" (padded to T_max={ds.t_max} with each video's last frame)",
    f'memory      {ds.videos.nbytes / 2**20:.1f} MiB uint8 {list(ds.videos.shape)}',
  ]
  for head, k in ds.heads:
    counts = np.bincount(ds.labels[head], minlength=k)
    lines.append(f'per class   {head}: min {counts.min()}, max {counts.max()} videos per class')
  return '\n'.join(lines)


def location(name: str, data_dir=None) -> str:
  """Where a dataset's files are (nothing on disk for the synthetic ones)."""
  key = pipeline.canonical_name(name)
  if key in pipeline.SYNTHETIC:
    return 'none on disk (deterministic from the seed; regenerated on each load)'
  root = data_dir or pipeline.default_data_dir()
  if pipeline.is_folder(key):
    from mstrnn_jax.data import folder

    src = folder.source_root(key)
    return f'prepared: {folder.prepared_dir(src, root)}; source videos: {src}'
  from mstrnn_jax.data import builders

  return (
    f'prepared: {builders.builder(key, root).data_dir}; '
    f'raw downloads: {builders.manual_dir(key, root)}'
  )


def describe(name: str, data_dir=None, **kwargs) -> str:
  """The full description; loads (and for real data, first prepares) the dataset."""
  ds = pipeline.load_dataset(name, data_dir, **kwargs)
  spec = pipeline.dataset_spec(name, data_dir, **kwargs)
  text = format_spec(spec, location(name, data_dir)) + '\n' + format_dataset(ds)
  if pipeline.is_folder(pipeline.canonical_name(name)):
    text += '\n' + format_skipped(name, data_dir, **kwargs)
  return text


def format_skipped(name: str, data_dir=None, **kwargs) -> str:
  """The clips a `folder:` dataset left out (with skip_bad_clips)."""
  from mstrnn_jax.data import folder

  options = {k: v for k, v in kwargs.items() if k != 'crop_margin'}
  skipped = folder.skipped(name, data_dir or pipeline.default_data_dir(), **options)
  lines = [f'skipped     {len(skipped)} unreadable clip(s)']
  lines += [f'            {s["path"]}: {s["error"]}' for s in skipped[:10]]
  return '\n'.join(lines + ([f'            ... ({len(skipped) - 10} more)'] * (len(skipped) > 10)))


FLAGS = flags.FLAGS


def _define_flags():
  """Command-line flags (defined only when run as a program, so imports never clash)."""
  define_dataset_flags()


def define_dataset_flags():
  """--dataset, --data_dir and the dataset options (shared with `preview`)."""
  flags.DEFINE_string(
    'dataset', 'synth3a', f'one of {", ".join(pipeline.NAMES)} (or 3acwd), or folder:PATH'
  )
  flags.DEFINE_string('data_dir', None, 'where datasets are prepared (default: data/)')
  flags.DEFINE_integer('seed', None, 'synthetic datasets: generator seed')
  flags.DEFINE_integer('frame_size', None, 'synthetic and folder: datasets: frame height == width')
  flags.DEFINE_integer('crop_margin', None, 'model input = frame size - crop_margin')
  flags.DEFINE_float('fps', None, 'folder: datasets: target frame rate of video files')
  flags.DEFINE_integer('frame_step', None, 'folder: datasets: keep every k-th frame')
  flags.DEFINE_integer('max_frames', None, 'folder: datasets: keep at most this many frames')
  flags.DEFINE_bool('skip_bad_clips', None, 'folder: datasets: leave out unreadable clips')
  flags.DEFINE_bool(
    'skip_incomplete_subjects', None, 'weizmann_3acwd: leave out subjects with missing clips'
  )


DATASET_OPTIONS = (
  'seed',
  'frame_size',
  'crop_margin',
  'fps',
  'frame_step',
  'max_frames',
  'skip_bad_clips',
  'skip_incomplete_subjects',
)


def dataset_kwargs() -> dict:
  """The dataset options given on the command line."""
  return {k: getattr(FLAGS, k) for k in DATASET_OPTIONS if getattr(FLAGS, k) is not None}


def main(argv):
  del argv
  kwargs = dataset_kwargs()
  try:
    try:
      print(describe(FLAGS.dataset, FLAGS.data_dir, **kwargs))
    except FileNotFoundError as e:  # real data not downloaded yet: say what is known and what to do
      if pipeline.is_folder(FLAGS.dataset):
        raise
      spec = pipeline.dataset_spec(FLAGS.dataset, FLAGS.data_dir, **kwargs)
      print(format_spec(spec, location(FLAGS.dataset, FLAGS.data_dir)) + '\n\n' + str(e))
      return 1
  except (ValueError, FileNotFoundError, OSError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
