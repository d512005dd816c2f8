"""notebooks/tour.ipynb runs top to bottom (so it cannot rot) and is stored without outputs."""

import os

import nbclient
import nbformat
import pytest

import subproc

NOTEBOOK = os.path.join(subproc.ROOT, 'notebooks', 'tour.ipynb')


def test_tour_is_stored_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  for cell in nb.cells:
    if cell.cell_type == 'code':
      assert cell.outputs == [] and cell.execution_count is None, (
        'notebooks/tour.ipynb holds outputs; clear them before committing '
        '(jupyter nbconvert --clear-output --inplace notebooks/tour.ipynb).'
      )


@pytest.mark.slow
def test_tour_executes_top_to_bottom():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  # Kernel started in the repository root so `import mstrnn_jax` works without installing;
  # any failing cell (including the notebook's own equality checks) raises CellExecutionError.
  client = nbclient.NotebookClient(
    nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': subproc.ROOT}}
  )
  client.execute()
  outputs = [o for cell in nb.cells if cell.cell_type == 'code' for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  text = ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')
  assert 'step-by-step logits == apply logits' in text
  assert 'context_layer3' in text
  images = [
    o for o in outputs if o.output_type == 'display_data' and 'image/png' in o.get('data', {})
  ]
  assert len(images) == 1, 'the PCA figure of the last cell is missing'
