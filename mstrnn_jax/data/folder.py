"""Your own videos: a dataset from a folder of clips, `folder:PATH`.

Layout (class names = folder names, one head named `class`):

  PATH/<subject>/<class>/<clip>      <clip>: a video file PyAV decodes, or a folder of frame images

or any layout plus a manifest `PATH/labels.csv` with the columns `path` (relative to PATH),
`subject` and one column per head (any number of heads; class names = the values found).

Preparation decodes every clip once into `<data_dir>/folder/<PATH's name>-<hash of PATH>/`
(`videos.array_record`, one record per clip, plus `meta.json`) next to a fingerprint of the
source files and the preparation options; an added, removed or changed clip or other options
prepare it again. A preparation is written to a temporary folder and renamed when complete.

```python
ds = load("folder:/videos", data_dir="data", frame_size=64, fps=10)
```
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import uuid

import numpy as np
from array_record.python import array_record_data_source, array_record_module

from mstrnn_jax.data import fingerprint
from mstrnn_jax.data.builders import common
from mstrnn_jax.data.dataset import Dataset, DatasetSpec
from mstrnn_jax.data.pipeline import FOLDER_PREFIX as PREFIX
from mstrnn_jax.data.pipeline import is_folder as is_folder_name
from mstrnn_jax.errors import ArgError

MANIFEST = 'labels.csv'
FOLDER_HEAD = 'class'
RECORDS = 'videos.array_record'
META = 'meta.json'
FORMAT_VERSION = 1

# Preparation options and their defaults (documented in docs/data.md, "Your own videos").
PREPARE_DEFAULTS = {
  'frame_size': 64,  # frames are area-resized to frame_size x frame_size (aspect not kept)
  'fps': None,  # video files: keep every round(fps_of_file / fps)-th frame (None: all)
  'frame_step': 1,  # then keep every k-th frame (video files and frame folders)
  'max_frames': None,  # then keep at most this many frames per clip (None: all)
  'skip_bad_clips': False,  # leave out clips that cannot be read (counted) instead of stopping
}
_log = logging.getLogger(__name__)
CROP_MARGIN = 6  # model input = frame_size - crop_margin (random crops in training, centre in test)


@dataclasses.dataclass(frozen=True)
class Entry:
  """One clip found in the source folder: its file, subject and head -> class name."""

  clip: common.Clip
  rel: str
  subject: str
  labels: dict


def source_root(name) -> pathlib.Path:
  """`folder:PATH` (or PATH) -> the existing folder PATH; one-line error otherwise."""
  path = str(name)[len(PREFIX) :] if is_folder_name(str(name)) else str(name)
  root = pathlib.Path(path).expanduser()
  if not path or not root.is_dir():
    raise FileNotFoundError(
      f'dataset folder:{path}: {root} is not a folder of videos '
      f'(expected {root}/<subject>/<class>/<clip> or {root}/{MANIFEST})'
    )
  return root.resolve()


def options(**kwargs) -> dict:
  """The preparation options with defaults filled in; rejects unknown names and bad values."""
  unknown = set(kwargs) - set(PREPARE_DEFAULTS)
  if unknown:
    raise ValueError(
      f'folder dataset: unknown option(s) {", ".join(sorted(unknown))}; valid: '
      f'{", ".join(PREPARE_DEFAULTS)}, crop_margin'
    )
  opts = {**PREPARE_DEFAULTS, **{k: v for k, v in kwargs.items() if v is not None}}
  opts['frame_size'] = _positive_int(opts['frame_size'], 'frame_size')
  opts['frame_step'] = _positive_int(opts['frame_step'], 'frame_step')
  if opts['max_frames'] is not None:
    opts['max_frames'] = _positive_int(opts['max_frames'], 'max_frames')
  if opts['fps'] is not None:
    opts['fps'] = float(opts['fps'])
    if not opts['fps'] > 0 or not np.isfinite(opts['fps']):
      raise ArgError('fps', f'folder dataset: fps must be a positive number, got {opts["fps"]}')
  opts['skip_bad_clips'] = bool(opts['skip_bad_clips'])
  return opts


def _positive_int(value, name: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ArgError(name, f'folder dataset: {name} must be an integer >= 1, got {value!r}')
  return int(value)


def _natural(text: str):
  return [int(s) if s.isdigit() else s for s in re.split(r'(\d+)', text.lower())]


def _visible(folder: pathlib.Path) -> list:
  return sorted((p for p in folder.iterdir() if not p.name.startswith(".")),
                key=lambda p: _natural(p.name))  # fmt: skip


def _folders(parent: pathlib.Path, what: str) -> list:
  """The visible sub-folders of `parent`; other files are ignored, except videos (misplaced)."""
  for p in _visible(parent):
    if not p.is_dir() and p.suffix.lower() in common.VIDEO_EXTENSIONS:
      raise ValueError(f'{p}: a video here is misplaced, {parent} should hold only {what}')
  return [p for p in _visible(parent) if p.is_dir()]


def _is_clip(path: pathlib.Path) -> bool:
  return path.is_dir() or path.suffix.lower() in common.VIDEO_EXTENSIONS


def scan(root: pathlib.Path) -> tuple:
  """Finds the clips: (head names, [Entry], [(relative path, reason)] of files that are no clip).

  Uses `root/labels.csv` when present, else the `<subject>/<class>/<clip>` layout.
  """
  if (root / MANIFEST).is_file():
    return _scan_manifest(root)
  entries, bad = [], []
  for subject in _folders(root, f"subject folders (layout <subject>/<class>/<clip>, or a "
                                f"{MANIFEST} manifest)"):  # fmt: skip
    for category in _folders(subject, 'class folders (layout <subject>/<class>/<clip>)'):
      for clip in _visible(category):
        rel = clip.relative_to(root).as_posix()
        if _is_clip(clip):
          entries.append(Entry(common.Clip(clip), rel, subject.name, {FOLDER_HEAD: category.name}))
        else:
          bad.append((rel, f"not a video ({' '.join(common.VIDEO_EXTENSIONS)}) "
                           "or a folder of frame images"))  # fmt: skip
  return (FOLDER_HEAD,), entries, bad


def _scan_manifest(root: pathlib.Path) -> tuple:
  path = root / MANIFEST
  try:
    with open(path, newline='') as f:
      reader = csv.DictReader(f)
      columns = [c.strip() for c in reader.fieldnames or []]
      rows = [{(k or '').strip(): (v or '').strip() for k, v in r.items()} for r in reader]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f'{path}: cannot read the manifest: {e}') from e
  heads = tuple(c for c in columns if c not in ('path', 'subject'))
  if 'path' not in columns or 'subject' not in columns or not heads:
    raise ValueError(
      f'{path}: needs a header row with the columns path,subject and one column '
      f'per head (e.g. path,subject,action), got {",".join(columns)}'
    )
  entries, bad = [], []
  for line, row in enumerate(rows, start=2):
    empty = [c for c in ('path', 'subject', *heads) if not row.get(c)]
    if empty:
      raise ValueError(f'{path} line {line}: empty {", ".join(empty)}')
    clip = (root / row['path']).resolve()
    if not clip.exists() or not _is_clip(clip):
      why = 'does not exist' if not clip.exists() else 'is not a video or a folder of frames'
      bad.append((row['path'], f'{MANIFEST} line {line}: {why}'))
      continue
    entries.append(Entry(common.Clip(clip), row["path"], row["subject"],
                         {h: row[h] for h in heads}))  # fmt: skip
  return heads, entries, bad


def class_names(heads: tuple, entries: list) -> dict:
  """head -> sorted (natural order) class names found."""
  return {h: sorted({e.labels[h] for e in entries}, key=_natural) for h in heads}


def subject_names(entries: list) -> list:
  return sorted({e.subject for e in entries}, key=_natural)


def prepared_dir(root: pathlib.Path, data_dir) -> pathlib.Path:
  """`<data_dir>/folder/<name>-<hash of the absolute source path>`."""
  digest = hashlib.sha1(str(root).encode()).hexdigest()[:10]
  return pathlib.Path(data_dir) / 'folder' / f'{root.name}-{digest}'


def _bad(rel: str, message: str, opts: dict, skipped: list) -> None:
  """Stops on a clip that cannot be read, or records it as skipped with `skip_bad_clips`."""
  if not opts['skip_bad_clips']:
    raise ValueError(
      f'bad clip: {message.rstrip(".")}. Or pass skip_bad_clips=True to leave out '
      'unreadable clips (they are counted).'
    )
  skipped.append({'path': rel, 'error': message})


def _build(root: pathlib.Path, out: pathlib.Path, opts: dict) -> dict:
  """Decodes every clip of `root` into `out` (records + meta.json); returns the metadata."""
  heads, entries, bad = scan(root)
  skipped = []
  for rel, reason in bad:
    _bad(rel, f'{root / rel}: {reason}', opts, skipped)
  size = (opts['frame_size'], opts['frame_size'])
  writer = array_record_module.ArrayRecordWriter(str(out / RECORDS), 'group_size:1,zstd:1')
  kept, lengths = [], []
  try:
    for e in entries:
      try:
        video = common.decode(e.clip, size, opts['fps'], opts['frame_step'], opts['max_frames'])
      except ValueError as err:
        _bad(e.rel, str(err), opts, skipped)
        continue
      writer.write(np.ascontiguousarray(video).tobytes())
      kept.append(e)
      lengths.append(len(video))
  finally:
    writer.close()
  if not kept:
    raise ValueError(
      f'folder:{root}: no readable clips found (layout <subject>/<class>/<clip> '
      f'or a {MANIFEST} manifest; {len(skipped)} skipped)'
    )
  names = class_names(heads, kept)
  subjects = subject_names(kept)
  meta = {
      "format": FORMAT_VERSION, "source": str(root), "heads": list(heads), "class_names": names,
      "subjects": subjects, "frame_size": list(size), "t_max": max(lengths),
      "clips": [{"path": e.rel, "subject": subjects.index(e.subject), "length": n,
                 "labels": {h: names[h].index(e.labels[h]) for h in heads}}
                for e, n in zip(kept, lengths)],
      "skipped": skipped, "options": opts,
  }  # fmt: skip
  (out / META).write_text(json.dumps(meta))
  return meta


def _remove_debris(target: pathlib.Path) -> None:
  for debris in target.parent.glob(f'{target.name}.incomplete-*'):
    shutil.rmtree(debris, ignore_errors=True)


def prepare(name, data_dir, **kwargs) -> pathlib.Path:
  """Prepares `folder:PATH` into `data_dir` unless prepared from the same files and options.

  Returns the prepared folder. kwargs: the options in `PREPARE_DEFAULTS`.
  """
  root = source_root(name)
  opts = options(**kwargs)
  target = prepared_dir(root, data_dir)
  if not _stale(root, target, opts):
    return target
  with fingerprint.lock(target):  # another process may be preparing it: wait, then look again
    stale = _stale(root, target, opts)
    if stale:
      if (target / META).is_file():
        _log.warning('folder:%s: preparing again (%s)', root, stale)
      _build_atomically(root, target, opts)
  return target


def _stale(root: pathlib.Path, target: pathlib.Path, opts: dict) -> str:
  """Why `target` must be prepared again ('' when it is up to date)."""
  if not (target / META).is_file():
    return 'not prepared'
  return fingerprint.changes(fingerprint.load(target), source_fingerprint(root, opts))


def source_fingerprint(root: pathlib.Path, opts: dict) -> dict:
  """The fingerprint of every file under `root` and of clips a manifest names outside it."""
  outside = []
  if (root / MANIFEST).is_file():
    _, entries, bad = _scan_manifest(root)
    paths = [e.clip.path for e in entries] + [(root / rel).resolve() for rel, _ in bad]
    outside = [p for p in paths if root not in p.parents]
  # The storage format version counts like an option: a new format prepares again.
  return fingerprint.fingerprint(root, {**opts, 'format': FORMAT_VERSION}, extra=outside)


def _build_atomically(root: pathlib.Path, target: pathlib.Path, opts: dict) -> None:
  """Builds into a temporary folder, then replaces `target` (call with the lock held)."""
  fp = source_fingerprint(root, opts)  # before decoding: a change meanwhile is seen later
  _remove_debris(target)
  tmp = target.with_name(f'{target.name}.incomplete-{uuid.uuid4().hex[:8]}')
  tmp.mkdir()
  try:
    meta = _build(root, tmp, opts)
    fingerprint.save(tmp, fp)
    if target.exists():
      shutil.rmtree(target)
    os.replace(tmp, target)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  if meta['skipped']:
    _log.warning(
      'folder:%s: skipped %d unreadable clip(s): %s',
      root,
      len(meta['skipped']),
      ', '.join(s['path'] for s in meta['skipped'][:5]),
    )


class Records:
  """Random access to a prepared folder's videos.

  `read(i)` -> uint8 `[T_i, H, W, 3]` (no padding); `lengths` int32 `[N]`; `meta`: meta.json.
  """

  def __init__(self, prepared: pathlib.Path):
    self.path = pathlib.Path(prepared)
    try:
      self.meta = json.loads((self.path / META).read_text())
    except (OSError, ValueError) as e:
      raise ValueError(
        f'{self.path / META}: cannot read the prepared metadata ({e}); delete '
        f'{self.path} to prepare again'
      ) from e
    self._source = array_record_data_source.ArrayRecordDataSource(str(self.path / RECORDS))
    self.lengths = np.array([c['length'] for c in self.meta['clips']], np.int32)
    self.frame_size = tuple(self.meta['frame_size'])
    self.t_max = int(self.meta['t_max'])

  def __len__(self) -> int:
    return len(self.lengths)

  def read(self, i: int) -> np.ndarray:
    h, w = self.frame_size
    return np.frombuffer(self._source[int(i)], np.uint8).reshape(self.lengths[i], h, w, 3)

  def close(self) -> None:
    self._source.__exit__(None, None, None)


def load(name, data_dir, crop_margin: int = CROP_MARGIN, lazy: bool = False, **kwargs) -> Dataset:
  """Prepares (once) and reads `folder:PATH` into memory as a `Dataset` (head order = manifest
  columns, or the single head `class`; classes and subjects in natural name order).

  lazy: the videos stay in the prepared files (`stream.LazyVideos`, read on indexing).
  """
  from mstrnn_jax.data import stream  # pylint: disable=import-outside-toplevel

  prepared = prepare(name, data_dir, **kwargs)
  rec = Records(prepared)
  meta = rec.meta
  h, w = rec.frame_size
  check_crop(crop_margin, h)
  videos = stream.LazyVideos(rec)
  if not lazy:
    videos = videos[:]
  heads = tuple((hd, len(meta['class_names'][hd])) for hd in meta['heads'])
  return Dataset(
      name=f"{PREFIX}{meta['source']}", videos=videos, lengths=rec.lengths,
      labels={hd: np.array([c["labels"][hd] for c in meta["clips"]], np.int32)
              for hd in meta["heads"]},
      heads=heads, class_names={hd: list(meta["class_names"][hd]) for hd in meta["heads"]},
      subjects=np.array([c["subject"] for c in meta["clips"]], np.int32),
      subject_names=list(meta["subjects"]), crop_size=h - crop_margin, source=str(prepared),
  )  # fmt: skip


def check_crop(crop_margin, frame_size: int) -> None:
  """ArgError unless `crop_margin` is an integer in 0..frame_size-1."""
  if (
    isinstance(crop_margin, bool)
    or not isinstance(crop_margin, (int, np.integer))
    or not (0 <= crop_margin < frame_size)
  ):
    raise ArgError(
      'crop_margin',
      f'folder dataset: crop_margin must be an integer in 0..{frame_size - 1} '
      f'(frame_size {frame_size}), got {crop_margin!r}',
    )


def spec(name, data_dir, crop_margin: int = CROP_MARGIN, **kwargs) -> DatasetSpec:
  """The spec from the prepared metadata when it is up to date, else from a scan of the folder
  (then t_max and num_videos are None: unknown until prepared)."""
  root = source_root(name)
  opts = options(**kwargs)
  check_crop(crop_margin, opts['frame_size'])
  target = prepared_dir(root, data_dir)
  if not _stale(root, target, opts):
    meta = json.loads((target / META).read_text())
    heads, names, subjects = meta['heads'], meta['class_names'], meta['subjects']
    t_max, n = meta['t_max'], len(meta['clips'])
  else:
    heads, entries, _ = scan(root)
    names, subjects, t_max, n = class_names(heads, entries), subject_names(entries), None, None
  size = opts['frame_size']
  return DatasetSpec(
      name=f"{PREFIX}{root}", heads=tuple((h, len(names[h])) for h in heads),
      class_names={h: list(names[h]) for h in heads}, frame_size=(size, size),
      crop_size=size - crop_margin, t_max=t_max, num_subjects=len(subjects), num_videos=n,
      synthetic=False, description=f"your own videos from {root}",
  )  # fmt: skip


def skipped(name, data_dir, **kwargs) -> list:
  """The clips left out of the prepared `folder:PATH` (`[{"path", "error"}]`)."""
  return Records(prepare(name, data_dir, **kwargs)).meta['skipped']
