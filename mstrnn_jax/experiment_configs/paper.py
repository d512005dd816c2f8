"""``paper`` preset: the paper's protocol (Sec. II.E-F).

Full-width models (Table I), voting period 15, mini-batches 27 / 90 / 84, the piecewise learning
rates, 600 epochs.  A synthetic analogue uses the hyper-parameters of the paper dataset it
imitates (synth3a -> 3ACWD, synthcl1 -> CL1AD, synthcl2 -> CL2AD) with a model derived for its
frame size.
"""

from ml_collections import config_dict

from mstrnn_jax import names
from mstrnn_jax.experiment_configs import base

# Sec. II.E: learning rates (boundaries in epochs of 600) and mini-batch sizes.
_LR = {
  'weizmann_3acwd': dict(lr_values=(0.01, 0.005, 0.001), lr_boundaries=(200, 300)),
  'cl1ad': dict(lr_values=(0.005, 0.001), lr_boundaries=(400,)),
  'cl2ad': dict(lr_values=(0.005, 0.001), lr_boundaries=(400,)),
}
FOLDER_ANALOGUE = 'weizmann_3acwd'  # folder:PATH (your own videos): 3ACWD's protocol
_BATCH = {'weizmann_3acwd': 27, 'cl1ad': 90, 'cl2ad': 84}


def get_config(dataset: str = 'cl1ad') -> config_dict.ConfigDict:
  c = base.get_config(dataset, 'paper')
  analogue = names.ANALOGUE.get(c.dataset, FOLDER_ANALOGUE)
  c.batch_size = _BATCH[analogue]
  c.optim.update(_LR[analogue])
  return c
