"""Test helper: damage a checkpoint the way a full disk or a bad copy would."""

import os


def truncate_checkpoint(ckpt_dir: str, epoch: int) -> None:
  """Truncates every array data file of ``ckpt_dir/<epoch>`` to half its size."""
  files = [
    os.path.join(r, f)
    for r, _, fs in os.walk(os.path.join(ckpt_dir, str(epoch)))
    for f in fs
    if os.sep + 'd' + os.sep in os.path.join(r, f)
  ]
  assert files
  for victim in files:
    with open(victim, 'r+b') as f:
      f.truncate(os.path.getsize(victim) // 2)
