"""Any dataset, or a part of it, written as a `folder:PATH` dataset of PNG frames.

  python -m mstrnn_jax.data.export --dataset=synthcl2 --where=action:touch,sweep \
      --heads=modifier --out=/tmp/cl2count
  python -m mstrnn_jax.data.export --dataset=synthcl2 --set=tempo_ratio=1.0 --out=/tmp/cl2t1

Use it to train on one slice of a dataset (the count videos of synthcl2, docs/fidelity.md
section 0w), or to try the `folder:PATH` route on known data. With one head the output has the
layout `<subject>/<class>/clipNNNN/frame_NNN.png` (the head becomes `class`); with several, the
same clips plus a `labels.csv` manifest with one column per head. `NNNN` is the clip's index in
the source dataset. A clip has its true length (no padding). The folder is written under a
temporary name and renamed when complete; an existing `--out` is never overwritten.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
import shutil
import sys
import uuid

import numpy as np
from absl import app, flags
from PIL import Image  # Pillow: a dependency of matplotlib

from mstrnn_jax.data import folder, pipeline
from mstrnn_jax.data.dataset import Dataset


def _check_head(ds: Dataset, head: str) -> None:
  if head not in ds.class_names:
    raise ValueError(f'{ds.name} has no head {head!r}; its heads: {", ".join(ds.class_names)}')


def select(ds: Dataset, where: dict) -> np.ndarray:
  """bool `[videos]`: the videos whose label in every head of `where` is one of its class names.

  where: head -> class names, e.g. `{'action': ['touch', 'sweep']}`; `{}` keeps everything.
  """
  keep = np.ones(len(ds.subjects), bool)
  for head, names in where.items():
    _check_head(ds, head)
    unknown = [n for n in names if n not in ds.class_names[head]]
    if unknown:
      raise ValueError(
        f'{ds.name}: head {head!r} has no class {", ".join(unknown)}; its classes: '
        f'{", ".join(ds.class_names[head])}'
      )
    wanted = [ds.class_names[head].index(n) for n in names]
    keep &= np.isin(ds.labels[head], wanted)
  return keep


def write_folder(ds: Dataset, out, keep=None, heads=None) -> int:
  """Writes the videos `keep` (bool mask; None: all) of `ds` to the new folder `out`.

  heads: the heads to write as labels (None: all). Returns the number of clips written.
  Raises FileExistsError if `out` exists, ValueError if nothing is selected or a head is unknown.
  """
  out = pathlib.Path(out)
  heads = list(heads or ds.class_names)
  for head in heads:
    _check_head(ds, head)
  index = np.arange(len(ds.subjects)) if keep is None else np.flatnonzero(keep)
  if not len(index):
    raise ValueError(f'{ds.name}: no video matches the selection; nothing written to {out}')
  if out.exists():
    raise FileExistsError(f'{out} exists; choose a new --out (nothing is overwritten)')
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_name(f'{out.name}.incomplete-{uuid.uuid4().hex[:8]}')
  width = max(4, len(str(len(ds.subjects) - 1)))
  rows = []
  try:
    for i in index:
      subject = ds.subject_names[ds.subjects[i]]
      labels = {h: ds.class_names[h][ds.labels[h][i]] for h in heads}
      middle = [labels[heads[0]]] if len(heads) == 1 else []
      rel = pathlib.Path(subject, *middle, f'clip{i:0{width}d}')
      (tmp / rel).mkdir(parents=True)
      for t in range(int(ds.lengths[i])):
        Image.fromarray(np.asarray(ds.videos[i, t])).save(tmp / rel / f'frame_{t:03d}.png')
      rows.append({'path': rel.as_posix(), 'subject': subject, **labels})
    if len(heads) > 1:
      with open(tmp / folder.MANIFEST, 'w', newline='') as f:
        writer = csv.DictWriter(f, ['path', 'subject', *heads])
        writer.writeheader()
        writer.writerows(rows)
    os.rename(tmp, out)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return len(rows)


def parse_where(items) -> dict:
  """['action:touch,sweep', ...] -> {'action': ['touch', 'sweep'], ...}."""
  where = {}
  for item in items or ():
    head, sep, names = item.partition(':')
    if not sep or not head or not names:
      raise ValueError(f'--where={item}: expected HEAD:CLASS[,CLASS...], e.g. action:touch,sweep')
    where.setdefault(head, []).extend(n for n in names.split(',') if n)
  return where


def parse_options(dataset: str, items) -> dict:
  """['tempo_ratio=1.0', ...] -> keyword arguments of a synthetic generator, typed from its
  argument record's defaults (`pipeline.SYNTHETIC_ARGS`)."""
  if not items:
    return {}
  name = pipeline.canonical_name(dataset)
  if name not in pipeline.SYNTHETIC_ARGS:
    raise ValueError(f'--set: only synthetic datasets take generator options, not {dataset}')
  defaults = dataclasses.asdict(pipeline.SYNTHETIC_ARGS[name]())
  kwargs = {}
  for item in items:
    key, sep, value = item.partition('=')
    if not sep or key not in defaults:
      raise ValueError(f'--set={item}: expected KEY=VALUE with KEY one of {", ".join(defaults)}')
    kind = type(defaults[key])
    if kind is bool:
      if value.lower() not in ('true', 'false'):
        raise ValueError(f'--set={item}: {key} takes true or false')
      kwargs[key] = value.lower() == 'true'
    else:
      try:
        kwargs[key] = kind(value)
      except ValueError:
        raise ValueError(f'--set={item}: {key} takes a {kind.__name__}') from None
  return kwargs


FLAGS = flags.FLAGS


def _define_flags():
  """Command-line flags (defined only when run as a program, so imports never clash)."""
  flags.DEFINE_string(
    'dataset', 'synthcl2', f'one of {", ".join(pipeline.NAMES)} (or 3acwd), or folder:PATH'
  )
  flags.DEFINE_string('data_dir', None, 'where real datasets are prepared (default: data/)')
  flags.DEFINE_multi_string('set', [], 'synthetic datasets: a generator option KEY=VALUE')
  flags.DEFINE_multi_string('where', [], 'keep only HEAD:CLASS[,CLASS...] (repeatable: all hold)')
  flags.DEFINE_list('heads', None, 'heads written as labels (default: all)')
  flags.DEFINE_string('out', None, 'the new folder to write', required=True)


def main(argv):
  del argv
  try:
    ds = pipeline.load_dataset(
      FLAGS.dataset, FLAGS.data_dir, **parse_options(FLAGS.dataset, FLAGS.set)
    )
    keep = select(ds, parse_where(FLAGS.where))
    n = write_folder(ds, FLAGS.out, keep, FLAGS.heads)
    lengths = ds.lengths[keep]
    print(f'wrote {FLAGS.out}: {n} clips, {lengths.min()}-{lengths.max()} frames; '
          f'train on it with --dataset=folder:{FLAGS.out}')  # fmt: skip
  except (ValueError, FileNotFoundError, FileExistsError, OSError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
