"""Prints what a dataset holds and where its files are.

python -m mstrnn_jax.data.describe --dataset=synth3a
python -m mstrnn_jax.data.describe --dataset=weizmann_3acwd --data_dir=/path/to/data
"""

from __future__ import annotations

import collections

import numpy as np
from absl import app, flags

from mstrnn_jax.data import pipeline
from mstrnn_jax.data.dataset import Dataset, DatasetSpec


def _classes(names: list, limit: int = 8) -> str:
  shown = ", ".join(names[:limit])
  return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def format_spec(spec: DatasetSpec, location: str) -> str:
  """The static facts of a dataset (no videos needed)."""
  h, w = spec.frame_size
  lines = [
      f"dataset     {spec.name}: {spec.description}",
      f"kind        {'synthetic analogue (generated in memory)' if spec.synthetic else 'real data'}",
      f"frames      {h}x{w}, crop {spec.crop_size}x{spec.crop_size} (model input)",
      f"T_max       {spec.t_max if spec.t_max is not None else 'unknown until prepared'}",
      f"videos      {spec.num_videos if spec.num_videos is not None else 'unknown until prepared'}"
      f" from {spec.num_subjects} subjects",
  ]
  for head, k in spec.heads:
    lines.append(f"head        {head}: {k} classes: {_classes(spec.class_names[head])}")
  lines.append(f"files       {location}")
  return "\n".join(lines)


def format_dataset(ds: Dataset) -> str:
  """Counts that need the loaded arrays: videos per subject, per class, lengths."""
  per_subject = collections.Counter(ds.subjects.tolist())
  lines = [
      "per subject " + ", ".join(f"{n}: {per_subject[i]}" for i, n in enumerate(ds.subject_names)),
      f"lengths     min {ds.lengths.min()}, mean {ds.lengths.mean():.1f}, max {ds.lengths.max()}"
      f" (padded to T_max={ds.t_max} with each video's last frame)",
      f"memory      {ds.videos.nbytes / 2**20:.1f} MiB uint8 {list(ds.videos.shape)}",
  ]
  for head, k in ds.heads:
    counts = np.bincount(ds.labels[head], minlength=k)
    lines.append(f"per class   {head}: min {counts.min()}, max {counts.max()} videos per class")
  return "\n".join(lines)


def location(name: str, data_dir=None) -> str:
  """Where a dataset's files are (nothing on disk for the synthetic ones)."""
  key = pipeline.canonical_name(name)
  if key in pipeline.SYNTHETIC:
    return "none on disk (deterministic from the seed; regenerated on each load)"
  from mstrnn_jax.data import builders

  root = data_dir or pipeline.default_data_dir()
  return (
      f"prepared: {builders.builder(key, root).data_dir}; "
      f"raw downloads: {builders.manual_dir(key, root)}"
  )


def describe(name: str, data_dir=None, **kwargs) -> str:
  """The full description; loads (and for real data, first prepares) the dataset."""
  ds = pipeline.load_dataset(name, data_dir, **kwargs)
  spec = pipeline.dataset_spec(name, data_dir, **kwargs)
  return format_spec(spec, location(name, data_dir)) + "\n" + format_dataset(ds)


FLAGS = flags.FLAGS


def _define_flags():
  """Command-line flags (defined only when run as a program, so imports never clash)."""
  flags.DEFINE_string("dataset", "synth3a", f"one of {', '.join(pipeline.NAMES)} (or 3acwd)")
  flags.DEFINE_string("data_dir", None, "where datasets are prepared (default: data/)")
  flags.DEFINE_integer("seed", None, "synthetic datasets: generator seed")
  flags.DEFINE_integer("frame_size", None, "synthetic datasets: frame height == width")


def main(argv):
  del argv
  kwargs = {k: getattr(FLAGS, k) for k in ("seed", "frame_size") if getattr(FLAGS, k) is not None}
  try:
    print(describe(FLAGS.dataset, FLAGS.data_dir, **kwargs))
  except FileNotFoundError as e:  # real data not downloaded yet: say what is known and what to do
    spec = pipeline.dataset_spec(FLAGS.dataset, FLAGS.data_dir, **kwargs)
    print(format_spec(spec, location(FLAGS.dataset, FLAGS.data_dir)) + "\n\n" + str(e))
    return 1


if __name__ == "__main__":
  _define_flags()
  app.run(main)
