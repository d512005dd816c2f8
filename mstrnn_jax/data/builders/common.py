"""Shared parts of the real-data builders: finding and decoding clips (PyAV), label parsing."""

from __future__ import annotations

import csv
import io
import pathlib
import re
import zipfile
from typing import NamedTuple, Optional

import av
import numpy as np

VIDEO_EXTENSIONS = ('.avi', '.mp4', '.mov', '.mkv', '.webm', '.mpg', '.mpeg')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')


class Clip(NamedTuple):
  """Where a clip lives: a video file, a member of a zip file, or a folder of frame images."""

  path: pathlib.Path
  member: Optional[str] = None  # name inside the zip file `path`

  def __str__(self):
    return f'{self.path}:{self.member}' if self.member else str(self.path)


def check_manual_dir(manual_dir: pathlib.Path, instructions: str) -> None:
  """Raises one clear error when the manual download folder is missing or empty."""
  if not manual_dir.is_dir() or not any(p for p in manual_dir.iterdir() if p.name[0] != '.'):
    raise FileNotFoundError(
      f'The raw files are missing: {manual_dir} '
      f'{"is empty" if manual_dir.is_dir() else "does not exist"}.\n{instructions}'
    )


def normalise(label: str) -> str:
  """'Change page' -> 'change_page', '2 Times' -> '2_times'."""
  return re.sub(r'[\s_]+', '_', label.strip().lower())


def parse_label(value: str, head: str, vocabulary, where: str) -> int:
  """Index of `value` in `vocabulary`; the error lists the valid names."""
  key = normalise(value)
  if key not in vocabulary:
    raise ValueError(
      f'{where}: unknown {head} {value!r}; valid {head} names: {", ".join(vocabulary)}'
    )
  return vocabulary.index(key)


def _natural_key(path: pathlib.Path):
  return [int(s) if s.isdigit() else s for s in re.split(r'(\d+)', path.name.lower())]


def _rgb(frame: av.VideoFrame, size: tuple) -> np.ndarray:
  return frame.to_ndarray(format='rgb24', width=size[1], height=size[0], interpolation='AREA')


def decode(
  clip: Clip,
  size: tuple,
  target_fps: Optional[float] = None,
  frame_step: int = 1,
  max_frames: Optional[int] = None,
) -> np.ndarray:
  """Decodes a clip to uint8 `[time, size[0], size[1], 3]` (area-resized).

  target_fps: keep every `round(fps / target_fps)`-th frame of a video file (None: all); frame
    folders have no frame rate and are taken as they are.
  frame_step: then keep every `frame_step`-th frame (video files and frame folders).
  max_frames: then keep at most the first `max_frames` frames (None: all).
  Raises ValueError naming the file when it cannot be decoded or has no frames.
  """
  try:
    if clip.member is None and clip.path.is_dir():
      images = sorted(
        (p for p in clip.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key
      )[::frame_step][:max_frames]
      frames = []
      for image in images:
        with av.open(str(image)) as container:
          frames.append(_rgb(next(container.decode(video=0)), size))
    else:
      source = (
        io.BytesIO(zipfile.ZipFile(clip.path).read(clip.member)) if clip.member else str(clip.path)
      )
      with av.open(source) as container:
        stream = container.streams.video[0]
        step = 1
        if target_fps is not None and stream.average_rate:
          step = max(1, round(float(stream.average_rate) / target_fps))
        step *= frame_step
        frames = []
        for i, f in enumerate(container.decode(stream)):
          if max_frames is not None and len(frames) >= max_frames:
            break
          if i % step == 0:
            frames.append(_rgb(f, size))
  except (
    av.FFmpegError,
    OSError,
    zipfile.BadZipFile,
    KeyError,
    StopIteration,
    IndexError,
    ValueError,
  ) as e:
    raise ValueError(
      f'cannot decode {clip}: {_one_line(e)}. Re-download or remove this file.'
    ) from e
  if not frames:
    raise ValueError(f'{clip} has no frames. Re-download or remove this file.')
  return np.stack(frames)


def _one_line(e: Exception) -> str:
  return ' '.join(str(e).split()) or type(e).__name__


def read_manifest(path: pathlib.Path, heads: dict) -> list:
  """Reads `labels.csv` (columns: path, subject, and one per head).

  heads: head -> vocabulary. Returns a list of (Clip, subject, {head: label index}).
  """
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  required = ['path', 'subject', *heads]
  if not rows or any(c not in rows[0] for c in required):
    raise ValueError(f'{path}: needs a header row with the columns {", ".join(required)}')
  out = []
  for i, row in enumerate(rows, start=2):
    where = f'{path} line {i}'
    clip_path = (path.parent / row['path'].strip()).resolve()
    if not clip_path.exists():
      raise ValueError(f'{where}: {clip_path} does not exist')
    labels = {h: parse_label(row[h], h, vocab, where) for h, vocab in heads.items()}
    out.append((Clip(clip_path), row['subject'].strip(), labels))
  return out


def scan_folders(root: pathlib.Path, heads: dict) -> list:
  """Reads the folder layout `<subject>/<label>-<label>[-<label>]/<video file or frame folder>`.

  heads: head -> vocabulary, in the order of the labels in the category folder's name.
  Returns a list of (Clip, subject, {head: label index}).
  """
  out = []
  visible = lambda d: sorted(
    (p for p in d.iterdir() if not p.name.startswith('.')), key=_natural_key
  )
  for subject in visible(root):
    if not subject.is_dir():
      continue
    for category in visible(subject):
      if not category.is_dir():
        raise ValueError(f"{category}: expected a folder named like "
                         f"{'-'.join('<' + h + '>' for h in heads)}")  # fmt: skip
      parts = category.name.split('-')
      if len(parts) != len(heads):
        raise ValueError(
          f'{category}: folder name must have {len(heads)} parts '
          f'{"-".join("<" + h + ">" for h in heads)}, e.g. '
          f'{"-".join(v[0] for v in heads.values())}'
        )
      labels = {h: parse_label(p, h, vocab, str(category))
                for p, (h, vocab) in zip(parts, heads.items())}  # fmt: skip
      for video in visible(category):
        if not (video.is_dir() or video.suffix.lower() in VIDEO_EXTENSIONS):
          raise ValueError(
            f'{video}: not a video ({", ".join(VIDEO_EXTENSIONS)}) or a folder of frames'
          )
        out.append((Clip(video), subject.name, labels))
  return out
