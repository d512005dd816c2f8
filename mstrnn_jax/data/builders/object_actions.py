"""TFDS builders for CL1AD and CL2AD (paper Sec. III.C-D) from the authors' released videos."""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from mstrnn_jax.data.builders import common
from mstrnn_jax.data.tabletop import (CL1_ACTIONS, CL1_OBJECTS, CL2_ACTIONS, CL2_MODIFIERS,
                                      CL2_OBJECTS)  # fmt: skip

FRAME_SIZE = 118
TARGET_FPS = 10.0  # 60 fps videos downsampled by 6 (Sec. III.C)

INSTRUCTIONS = """\
Download the {title} release from
  {url}
extract it, and arrange the clips under {{manual_dir}} in either layout:
  (a) folders:  <subject>/<category>/<clip>   e.g.  {example}
      <category> is the labels joined by '-' ({pattern}); letter case and spaces are free
      ('{example_cat}'); <clip> is a video file (.avi .mp4 .mov .mkv .webm .mpg) or a folder of
      frame images (.png .jpg .bmp, in name order).
  (b) a manifest {{manual_dir}}/labels.csv with the header  path,subject,{columns}
      (paths relative to the manifest), for any other layout.
Video files are decoded at ~{fps:g} fps (every round(fps/{fps:g})-th frame); frame folders are
used as they are. Frames are resized to {size}x{size}."""


class _ObjectActionBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Common part: heads are given by `HEADS` (head -> vocabulary)."""

  VERSION = tfds.core.Version('1.0.0')
  HEADS: dict = {}

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
      'video': tfds.features.Tensor(
        shape=(None, FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8, encoding='zlib'
      ),
      'length': tfds.features.Scalar(dtype=np.int32),
      'subject': tfds.features.Text(),
      'clip': tfds.features.Text(),
    }
    for head, vocab in self.HEADS.items():
      features[head] = tfds.features.ClassLabel(names=list(vocab))
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(features),
      metadata=tfds.core.MetadataDict(),
      disable_shuffling=True,  # examples stay in the order of the clip list
    )

  def _split_generators(self, dl_manager):
    root = pathlib.Path(dl_manager.manual_dir)
    manifest = root / 'labels.csv'
    if manifest.exists():
      clips = common.read_manifest(manifest, self.HEADS)
    else:
      if any(p.suffix.lower() == '.zip' for p in root.iterdir()):
        raise ValueError(f"{root} holds zip files: extract them first.\n"
                         + self.MANUAL_DOWNLOAD_INSTRUCTIONS.format(manual_dir=root))  # fmt: skip
      clips = common.scan_folders(root, self.HEADS)
    if not clips:
      raise ValueError(f"no clips found under {root}.\n"
                       + self.MANUAL_DOWNLOAD_INSTRUCTIONS.format(manual_dir=root))  # fmt: skip
    return {'train': self._generate_examples(clips)}

  def _generate_examples(self, clips):
    t_max = 0
    for i, (clip, subject, labels) in enumerate(clips):
      video = common.decode(clip, (FRAME_SIZE, FRAME_SIZE), TARGET_FPS)
      t_max = max(t_max, len(video))
      yield i, {"video": video, "length": len(video), "subject": subject, "clip": str(clip),
                **labels}  # fmt: skip
    self.info.metadata.update(t_max=t_max, subjects=sorted({c[1] for c in clips}))


def _instructions(title, url, heads, example_cat):
  return INSTRUCTIONS.format(
      title=title, url=url, example=f"subject01/{example_cat.lower().replace(' ', '_')}/clip01.mp4",
      pattern="-".join(f"<{h}>" for h in heads), example_cat=example_cat,
      columns=",".join(heads), fps=TARGET_FPS, size=FRAME_SIZE,
  )  # fmt: skip


class Cl1ad(_ObjectActionBuilder):
  """Compositionality level 1 action dataset: heads ADO (4) and action (9)."""

  name = 'cl1ad'
  HEADS = {'ado': CL1_OBJECTS, 'action': CL1_ACTIONS}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions(
    'CL1AD', 'https://github.com/haanvid/CL1AD/releases', HEADS, 'Book-Change page'
  )


class Cl2ad(_ObjectActionBuilder):
  """Compositionality level 2 action dataset: heads ADO (4), action (4), modifier (6)."""

  name = 'cl2ad'
  HEADS = {'ado': CL2_OBJECTS, 'action': CL2_ACTIONS, 'modifier': CL2_MODIFIERS}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions(
    'CL2AD', 'https://github.com/haanvid/CL2AD/releases', HEADS, 'Cup-Touch-2 Times'
  )
