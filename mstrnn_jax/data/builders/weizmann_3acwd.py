"""TFDS builder for 3ACWD: three Weizmann actions concatenated (paper Sec. III.B)."""

from __future__ import annotations

import itertools
import logging
import pathlib
import zipfile

import numpy as np
import tensorflow_datasets as tfds

from mstrnn_jax.data.builders import common
from mstrnn_jax.data.synthetic import SYNTH3A_CLASSES

_log = logging.getLogger(__name__)
# Clip names of the Weizmann database, e.g. daria_pjump.avi, denis_wave1.avi, lena_run1.avi.
USED_ACTIONS = ('pjump', 'wave1', 'wave2')  # jump-in-place, one-hand-wave, two-hand-wave
ALL_ACTIONS = ('bend', 'jack', 'jump', 'pjump', 'run', 'side', 'skip', 'walk', 'wave1', 'wave2')
FRAME_SIZE = 83

INSTRUCTIONS = """\
Download the Weizmann "Classification Database" clips of the actions pjump, wave1 and wave2
(pjump.zip, wave1.zip, wave2.zip) from
  https://www.wisdom.weizmann.ac.il/~vision/SpaceTimeActions.html
and put the zip files, or the extracted .avi clips (daria_pjump.avi, denis_wave1.avi, ...),
into {manual_dir}
Other Weizmann actions in that folder are ignored."""


def find_clips(manual_dir: pathlib.Path, skip_incomplete_subjects: bool = False) -> dict:
  """Finds the clips: `{subject: {action: Clip}}` for every subject with all of USED_ACTIONS.

  Accepts .avi files anywhere under `manual_dir` and .avi members of .zip files there. A subject
  missing one of USED_ACTIONS is an error, or left out (with a warning) when
  `skip_incomplete_subjects`.
  """
  found = []
  for path in sorted(manual_dir.rglob('*')):
    if path.suffix.lower() == '.avi':
      found.append((path.name, common.Clip(path)))
    elif path.suffix.lower() == '.zip':
      try:
        members = zipfile.ZipFile(path).namelist()
      except zipfile.BadZipFile as e:
        raise ValueError(f'cannot read {path}: {e}. Re-download it.') from e
      found += [(pathlib.PurePosixPath(m).name, common.Clip(path, m))
                for m in members if m.lower().endswith(".avi")]  # fmt: skip
  clips = {}
  for name, clip in found:
    stem = name[: -len('.avi')].lower()
    subject, _, action = stem.partition('_')
    if action not in ALL_ACTIONS and action.rstrip('0123456789') not in ALL_ACTIONS:
      raise ValueError(
        f'{clip}: unknown Weizmann action {action!r} (clips are named <subject>_<action>.avi);'
        f' valid action names: {", ".join(ALL_ACTIONS)}'
      )
    if action not in USED_ACTIONS:
      continue
    if action in clips.setdefault(subject, {}):
      raise ValueError(f"two clips for {subject}_{action}: {clips[subject][action]} and {clip}; "
                       "keep only one (e.g. the zip files or the extracted clips)")  # fmt: skip
    clips[subject][action] = clip
  incomplete = {s: sorted(set(USED_ACTIONS) - set(a)) for s, a in clips.items()
                if set(a) != set(USED_ACTIONS)}  # fmt: skip
  missing = ', '.join(f'{s}_{a}.avi' for s, acts in incomplete.items() for a in acts)
  if incomplete and skip_incomplete_subjects:
    _log.warning(
      'weizmann_3acwd: leaving out subject(s) %s (missing clips %s)', ', '.join(incomplete), missing
    )
    clips = {s: a for s, a in clips.items() if s not in incomplete}
  elif incomplete:
    raise ValueError(
      f'{manual_dir}: missing clips {missing}; add them, or leave out the subject(s) '
      f'{", ".join(incomplete)} with the option skip_incomplete_subjects=True\n'
      + INSTRUCTIONS.format(manual_dir=manual_dir)
    )
  if not clips:
    raise ValueError(
      f'{manual_dir}: missing clips (none found)\n' + INSTRUCTIONS.format(manual_dir=manual_dir)
    )
  return dict(sorted(clips.items()))


def concatenate(decoded: dict, triple) -> np.ndarray:
  """Concatenates the clips of `triple` (action names) and halves the frame rate (every 2nd)."""
  return np.concatenate([decoded[a] for a in triple])[::2]


class Weizmann3acwd(tfds.core.GeneratorBasedBuilder):
  """Three Actions Concatenated Weizmann Dataset: 27 ordered triples per subject."""

  name = 'weizmann_3acwd'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': '83x83 frames, frame rate halved after concatenation (Sec. III.B).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
  HEADS = {'action': SYNTH3A_CLASSES}

  def __init__(self, *, skip_incomplete_subjects: bool = False, **kwargs):
    self.skip_incomplete_subjects = skip_incomplete_subjects
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          'video': tfds.features.Tensor(
            shape=(None, FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8, encoding='zlib'
          ),
          'length': tfds.features.Scalar(dtype=np.int32),
          'action': tfds.features.ClassLabel(names=list(self.HEADS['action'])),
          'subject': tfds.features.Text(),
        }
      ),
      metadata=tfds.core.MetadataDict(),
      disable_shuffling=True,  # examples stay in generation order: subject, then class
      homepage='https://www.wisdom.weizmann.ac.il/~vision/SpaceTimeActions.html',
    )

  def _split_generators(self, dl_manager):
    clips = find_clips(pathlib.Path(dl_manager.manual_dir), self.skip_incomplete_subjects)
    return {'train': self._generate_examples(clips)}

  def _generate_examples(self, clips):
    t_max = 0
    for subject, by_action in clips.items():
      decoded = {a: common.decode(c, (FRAME_SIZE, FRAME_SIZE)) for a, c in by_action.items()}
      for label, triple in enumerate(itertools.product(USED_ACTIONS, repeat=3)):
        video = concatenate(decoded, triple)
        t_max = max(t_max, len(video))
        yield f"{subject}_{'_'.join(triple)}", {
            "video": video, "length": len(video), "action": label, "subject": subject,
        }  # fmt: skip
    self.info.metadata.update(t_max=t_max, subjects=list(clips))
