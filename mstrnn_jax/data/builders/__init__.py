"""Real-data TFDS builders (array_record files, read with `as_data_source()`: no TensorFlow).

Raw downloads go to `<data_dir>/downloads/<name>/` (see each builder's instructions); prepared
files land in `<data_dir>/<name>/<version>/`.
"""

from __future__ import annotations

import logging
import pathlib
import shutil

import numpy as np
import tensorflow_datasets as tfds

from mstrnn_jax.data import fingerprint
from mstrnn_jax.data.builders import common
from mstrnn_jax.data.builders.object_actions import Cl1ad, Cl2ad
from mstrnn_jax.data.builders.weizmann_3acwd import Weizmann3acwd
from mstrnn_jax.data.dataset import Dataset, DatasetSpec, pad_with_last_frame

_log = logging.getLogger(__name__)
BUILDERS = {'weizmann_3acwd': Weizmann3acwd, 'cl1ad': Cl1ad, 'cl2ad': Cl2ad}
PAPER_SUBJECTS = {'weizmann_3acwd': 9, 'cl1ad': 10, 'cl2ad': 10}
DESCRIPTIONS = {
  'weizmann_3acwd': '3ACWD: Weizmann pjump/wave1/wave2 concatenated, 27 ordered triples',
  'cl1ad': 'CL1AD: 15 object-action categories (4 ADOs x 9 actions) with a distractor',
  'cl2ad': 'CL2AD: object-action-modifier triplets (4 ADOs, 4 actions, 6 modifiers)',
}
# Builder options each real dataset accepts (beyond crop_margin), with their defaults.
OPTIONS = {'weizmann_3acwd': {'skip_incomplete_subjects': False}, 'cl1ad': {}, 'cl2ad': {}}
CROP_MARGIN = 10  # paper Sec. II.E: random crops 10 pixels smaller in width and height


def manual_dir(name: str, data_dir) -> pathlib.Path:
  """Where the user puts the raw downloads of `name`."""
  return pathlib.Path(data_dir) / 'downloads' / name


def builder(name: str, data_dir, **options) -> tfds.core.DatasetBuilder:
  """The TFDS builder of `name`; `options` are builder options (see `OPTIONS`)."""
  return BUILDERS[name](data_dir=str(data_dir), file_format='array_record', **options)


def _remove_debris(b: tfds.core.DatasetBuilder) -> None:
  """Deletes `incomplete.*` folders that a preparation killed half-way left beside `b`'s data."""
  parent = pathlib.Path(b.data_dir).parent
  for debris in parent.glob(f'incomplete.*_{pathlib.Path(b.data_dir).name}'):
    shutil.rmtree(debris, ignore_errors=True)


def prepare(name: str, data_dir, **options) -> tfds.core.DatasetBuilder:
  """Prepares `name` from its manual downloads unless prepared from the same files; returns it.

  The fingerprint of the raw files (names, sizes, mtimes) and `options` is stored beside the
  prepared files; when it no longer matches (a clip added, removed or changed, other options),
  the dataset is prepared again. With the raw files gone, the prepared data is used as it is.
  """
  options = {**OPTIONS[name], **options}
  b = builder(name, data_dir, **options)
  manual = manual_dir(name, data_dir)
  if not _stale(b, manual, options):
    return b
  common.check_manual_dir(manual, b.MANUAL_DOWNLOAD_INSTRUCTIONS.format(manual_dir=manual))
  with fingerprint.lock(b.data_dir):  # another process may be preparing it: wait, look again
    b = builder(name, data_dir, **options)
    stale = _stale(b, manual, options)
    if not stale:
      return b
    if b.is_prepared():
      _log.warning('%s: preparing again, the raw files in %s changed (%s)', name, manual, stale)
      shutil.rmtree(b.data_dir)
      b = builder(name, data_dir, **options)
    _remove_debris(b)
    fp = fingerprint.fingerprint(manual, options)  # before decoding: a change meanwhile is seen
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    fingerprint.save(b.data_dir, fp)
  return b


def _stale(b: tfds.core.DatasetBuilder, manual: pathlib.Path, options: dict) -> str:
  """Why `b` must be prepared ('' when it is prepared from the files now in `manual`, or
  prepared and `manual` is gone or empty: then the prepared files are all there is)."""
  if not b.is_prepared():
    return 'not prepared'
  if not (manual.is_dir() and any(p.name[0] != '.' for p in manual.iterdir())):
    return ''
  return fingerprint.changes(fingerprint.load(b.data_dir), fingerprint.fingerprint(manual, options))


def load(name: str, data_dir, crop_margin: int = CROP_MARGIN, **options) -> Dataset:
  """Prepares (once) and reads the whole dataset into memory as a `Dataset`.

  options: builder options, see `OPTIONS` (e.g. `skip_incomplete_subjects=True` for Weizmann).
  """
  b = prepare(name, data_dir, **options)
  source = b.as_data_source(split='train')
  label_features = list(b.HEADS)
  subjects = list(b.info.metadata['subjects'])
  videos, labels, subject_ids = [], {k: [] for k in label_features}, []
  for i in range(len(source)):
    ex = source[i]
    videos.append(ex['video'][: ex['length']])
    for k in label_features:
      labels[k].append(ex[k])
    subject_ids.append(subjects.index(ex['subject'].decode()))
  stacked, lengths = pad_with_last_frame(videos)
  heads = tuple((k, b.info.features[k].num_classes) for k in label_features)
  return Dataset(
      name=name, videos=stacked, lengths=lengths,
      labels={k: np.asarray(v, np.int32) for k, v in labels.items()}, heads=heads,
      class_names={k: list(b.info.features[k].names) for k in label_features},
      subjects=np.asarray(subject_ids, np.int32), subject_names=subjects,
      crop_size=stacked.shape[2] - crop_margin, source=str(b.data_dir),
  )  # fmt: skip


def spec(name: str, data_dir, crop_margin: int = CROP_MARGIN, **options) -> DatasetSpec:
  """The dataset's spec without decoding videos (t_max and counts need it to be prepared)."""
  b = builder(name, data_dir, **options)
  labels = list(b.HEADS)
  size = b.info.features['video'].shape[1]
  prepared = b.is_prepared()
  meta = b.info.metadata if prepared else {}
  return DatasetSpec(
      name=name, heads=tuple((k, b.info.features[k].num_classes) for k in labels),
      class_names={k: list(b.info.features[k].names) for k in labels},
      frame_size=(size, size), crop_size=size - crop_margin,
      t_max=int(meta["t_max"]) if prepared else None,
      num_subjects=len(meta["subjects"]) if prepared else PAPER_SUBJECTS[name],
      num_videos=b.info.splits["train"].num_examples if prepared else None,
      synthetic=False, description=DESCRIPTIONS[name],
  )  # fmt: skip


class Records:
  """Random access to a prepared real dataset, in the order of `load`.

  `read(i)` -> uint8 `[T_i, H, W, 3]` (no padding).
  """

  def __init__(self, b: tfds.core.DatasetBuilder):
    self._source = b.as_data_source(split='train')
    self.t_max = int(b.info.metadata['t_max'])
    size = b.info.features['video'].shape[1]
    self.frame_size = (size, size)

  def __len__(self) -> int:
    return len(self._source)

  def read(self, i: int) -> np.ndarray:
    ex = self._source[int(i)]
    return ex['video'][: ex['length']]
