"""Layer-by-layer output shapes and parameter counts of MSTRNN, MSTNN and LRCN.

python experiments/summary.py --dataset=cl1ad          # paper sizes, next to Table II
python experiments/summary.py --dataset=3acwd
python experiments/summary.py --dataset=synth3a --width_scale=0.25   # synthetic, derived config
"""

from absl import app
from absl import flags

from mstrnn_jax import configs
from mstrnn_jax import models

_DATASET = flags.DEFINE_string(
  'dataset',
  'cl1ad',
  'Paper dataset (3acwd, weizmann_3acwd, cl1ad, cl2ad) or a synthetic one '
  '(synth3a, synthcl1, synthcl2: config derived from its frame size, heads and length).',
)
_MODEL = flags.DEFINE_enum('model', 'all', configs.MODELS + ('all',), 'Model(s) to summarise.')
_WIDTH_SCALE = flags.DEFINE_float('width_scale', 1.0, 'Width multiplier (derived configs only).')


def main(argv):
  del argv
  names = configs.MODELS if _MODEL.value == 'all' else (_MODEL.value,)
  cfgs = tuple(
    configs.config_for_dataset(m, _DATASET.value, width_scale=_WIDTH_SCALE.value) for m in names
  )
  print(models.summary_table(cfgs, title=f'dataset: {_DATASET.value}'))


if __name__ == '__main__':
  app.run(main)
