"""Where the held-out subject's batch-norm statistics matter, on a trained workdir.

    python experiments/bn_probe.py --workdir=runs/C1rs3i_mstrnn
    python experiments/bn_probe.py --workdir=runs/default --model=lrcn --out_dir=/tmp/probe

For every fold (latest checkpoint): the held-out subject's joint accuracy with `subject`
statistics at the BN sites up to each one and `population` statistics after it, how far each
subject's own statistics sit from the population's, and, when the run had validation subjects,
the held-out subject under their statistics (`unseen`: another subject unseen in training, no
held-out data) and the mirror (mstrnn_jax/bn_probe.py). With --test_override, the held-out
videos come from the dataset rebuilt with those data settings (same subjects and labels; the
network and its population statistics unchanged):

    python experiments/bn_probe.py --workdir=runs/Q3k27 --test_override=data.synth3a.clips_per_primitive=1

Writes
bn_probe.json, bn_probe.md and bn_probe.png to --out_dir (default <workdir>/bn_probe/<model>/,
or <workdir>/bn_probe/<model>/test_<setting> with --test_override),
never overwriting, and prints bn_probe.md.
"""

import os
import sys

from absl import app
from absl import flags

from mstrnn_jax import bn_probe, checkpoint, cli, workdir

_WORKDIR = flags.DEFINE_string(
  'workdir', None, 'A workdir written by experiments/run.py.', required=True
)
_MODEL = flags.DEFINE_string('model', None, 'Model of the workdir (default: its first).')
_DATA_DIR = flags.DEFINE_string(
  'data_dir', None, 'Where real datasets are prepared (default: data/).'
)
_OUT_DIR = flags.DEFINE_string(
  'out_dir',
  None,
  'Output folder (default: <workdir>/bn_probe/<model>, with --test_override its subfolder '
  'test_<field>=<value>).',
)
_TEST_OVERRIDE = flags.DEFINE_multi_string(
  'test_override',
  [],
  'Held-out videos from the dataset with this data setting, field=value (repeatable), e.g. '
  'data.synth3a.clips_per_primitive=1.',
)


def main(argv):
  if len(argv) > 1:
    sys.exit(cli.usage_error(argv))
  cli.quiet_logs()
  try:
    record = workdir.read_record(_WORKDIR.value)
    model = workdir.record_model(record, _WORKDIR.value, _MODEL.value)
    overrides = cli.settings(_TEST_OVERRIDE.value, 'test_override')
    tag = '_'.join(f'{k}={v}' for k, v in overrides.items())
    out_dir = _OUT_DIR.value or os.path.join(
      _WORKDIR.value, 'bn_probe', model, *([f'test_{tag}'] if tag else [])
    )
    workdir.check_writable(out_dir, '--out_dir')
    bn_probe.output_paths(out_dir)  # before the work: nothing is overwritten
    result = bn_probe.probe_workdir(
      _WORKDIR.value, model, _DATA_DIR.value, progress=True, test_overrides=overrides
    )
    paths = bn_probe.write(result, out_dir)
  except (ValueError, KeyError, OSError, checkpoint.CheckpointError) as e:
    sys.exit(f'error: {e}')
  print(bn_probe.markdown(result))
  print('Wrote ' + ', '.join(paths))


if __name__ == '__main__':
  app.run(main)
