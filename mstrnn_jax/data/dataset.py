"""The in-memory dataset type shared by the synthetic generators, the builders and the pipeline."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What a dataset looks like, known without rendering or loading it.

  heads:        ordered `((head, num_classes), ...)`, e.g. `(('ado', 4), ('action', 9))`.
  class_names:  head -> class names, index = label.
  frame_size:   `(H, W)` of the stored frames.
  crop_size:    model input size (`H - crop margin`; square crops).
  t_max:        padded video length (None for a real dataset that is not prepared yet).
  num_subjects, num_videos: counts (num_videos None when unknown before preparation).
  synthetic:    True for the procedurally generated analogues.
  """

  name: str
  heads: tuple
  class_names: dict
  frame_size: tuple
  crop_size: int
  t_max: Optional[int]
  num_subjects: int
  num_videos: Optional[int]
  synthetic: bool
  description: str


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A whole dataset as NumPy arrays (the contract in docs/design.md).

  videos:        uint8 `[videos, t_max, H, W, 3]`, each padded with its own last frame.
  lengths:       int32 `[videos]`, true lengths.
  labels:        head -> int32 `[videos]`, keys ordered like `heads`.
  heads:         `((head, num_classes), ...)`.
  class_names:   head -> list of class names.
  subjects:      int32 `[videos]` in `0..S-1`;  subject_names: list of S names.
  crop_size:     model input size after cropping.
  """

  name: str
  videos: np.ndarray
  lengths: np.ndarray
  labels: dict
  heads: tuple
  class_names: dict
  subjects: np.ndarray
  subject_names: list
  crop_size: int
  source: str = ''

  def __post_init__(self):
    n = self.videos.shape[0]
    if self.videos.dtype != np.uint8 or self.videos.ndim != 5 or self.videos.shape[-1] != 3:
      raise ValueError(
        f'{self.name}: videos must be uint8 [N, T, H, W, 3], got '
        f'{self.videos.dtype} {self.videos.shape}'
      )
    if self.lengths.shape != (n,) or self.subjects.shape != (n,):
      raise ValueError(f'{self.name}: lengths/subjects must have shape ({n},)')
    if tuple(self.labels) != tuple(h for h, _ in self.heads):
      raise ValueError(f'{self.name}: label heads {tuple(self.labels)} != {self.heads}')
    for head, k in self.heads:
      lab = self.labels[head]
      if lab.shape != (n,) or (n and (lab.min() < 0 or lab.max() >= k)):
        raise ValueError(f'{self.name}: labels[{head!r}] must be [N] in 0..{k - 1}')
      if len(self.class_names[head]) != k:
        raise ValueError(
          f'{self.name}: {k} classes but {len(self.class_names[head])} names for head {head!r}'
        )
    if n and (self.lengths.min() < 1 or self.lengths.max() > self.videos.shape[1]):
      raise ValueError(f'{self.name}: lengths must be in 1..{self.videos.shape[1]}')
    if self.crop_size > min(self.videos.shape[2:4]):
      raise ValueError(
        f'{self.name}: crop_size {self.crop_size} exceeds frame size {self.videos.shape[2:4]}'
      )

  @property
  def t_max(self) -> int:
    return int(self.videos.shape[1])

  @property
  def frame_size(self) -> tuple:
    return tuple(int(s) for s in self.videos.shape[2:4])

  @property
  def num_subjects(self) -> int:
    return len(self.subject_names)

  def __len__(self) -> int:
    return int(self.videos.shape[0])


def pad_with_last_frame(videos: list, t_max: Optional[int] = None) -> tuple:
  """Stacks variable-length videos, padding each with its last frame (paper Sec. II.E).

  Args:
    videos: list of uint8 `[T_i, H, W, 3]`.
    t_max: padded length; default the longest video.
  Returns:
    (uint8 `[N, t_max, H, W, 3]`, int32 lengths `[N]`).
  """
  lengths = np.array([v.shape[0] for v in videos], np.int32)
  t_max = int(lengths.max()) if t_max is None else t_max
  if lengths.min() < 1 or lengths.max() > t_max:
    raise ValueError(f'video lengths must be in 1..{t_max}, got {lengths.min()}..{lengths.max()}')
  out = np.empty((len(videos), t_max) + videos[0].shape[1:], np.uint8)
  for i, v in enumerate(videos):
    out[i, : len(v)] = v
    out[i, len(v) :] = v[-1]
  return out, lengths


def repeat_last_frame(videos: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """Returns a copy of `videos` whose frames `t >= lengths[i]` repeat video i's last true frame.

  videos: `[N, T, H, W, C]`; lengths: int `[N]` in 1..T.
  """
  t = np.arange(videos.shape[1])
  src = np.minimum(t[None, :], lengths[:, None] - 1)  # [N, T]
  return np.take_along_axis(videos, src[:, :, None, None, None], axis=1)
