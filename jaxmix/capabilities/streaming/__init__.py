"""Exact k-means, soft k-means and GMM fits over a source read in batches.

One pass over the source is one E-step: a module-level jitted function
adds each batch's statistics (the core `e_step` of the model, on the batch)
to running sums kept on the device; after the pass the core `m_step` runs
once. The first pass gathers the weighted data mean (the global shift every
fit works about, as the in-memory fits do), the per-feature variance (which
scales k-means' `tol`) and, when seeding needs one, a weighted reservoir
sample of rows. Given the same start the iterates are those of the
in-memory fit, up to the order of floating-point sums.

Batches are padded with weight-0 rows to a few fixed sizes (the source's
`batch_rows`, or powers of two) so that a ragged last batch does not
compile a new program.

Checkpoints hold the fit's whole state (parameters, objective history,
iteration counters, the shift) and, when `checkpoint_every` is given, the
running sums of the pass in progress with the index of the next batch.
They are NumPy `.npz` files written atomically and read with
`allow_pickle=False`. Running the fit again with the same checkpoint
resumes it: the same batches are summed in the same order, so the result is
bit for bit the uninterrupted one. The checkpoint's fingerprint (model,
options, key, init, source shape and dtype, and the source's content:
its row and batch counts and digests of batches spread over it) must
match, or the fit refuses it with a ValueError naming the file; so does a
damaged checkpoint. A row-sliceable source is bound by reading up to
SAMPLED_BATCHES of its batches by index; a callable source, whose size is
only known after a pass, by a digest of every batch of its first pass,
checked by reading it again (on the host, without fitting) on resume.

What differs from the in-memory fits:
- `labels` in the results is a zero-size int32 array (the labels of data
  that need not fit in memory); `predict` gives them batch by batch.
- A k-means cluster that loses all its rows keeps its centre (the in-memory
  fit moves it to the farthest row, which would cost another pass).
- Seeding ("k-means++", "random", "random_from_data") runs on a weighted
  reservoir sample of `init_sample` rows; when the source has no more rows
  than that, the sample is the whole source and the seeds are those of the
  in-memory fit with the same key.
- One restart only (no `n_init`); no GMM prior, `reinit_collapsed` or
  `init="random"`; the objective at the returned parameters costs one
  last pass, as it does in memory.

Modules: `programs` (per-batch programs), `reservoir` (seeding sample), `checkpoints`, `passes` (the driver),
`kmeans`, `gmm`, `soft_kmeans` (the fits), `predict`.
"""

from __future__ import annotations

from jaxmix.capabilities.streaming.checkpoints import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
from jaxmix.capabilities.streaming.checkpoints import CHECKPOINT_VERSION as CHECKPOINT_VERSION
from jaxmix.capabilities.streaming.checkpoints import INIT_SAMPLE_MIN as INIT_SAMPLE_MIN
from jaxmix.capabilities.streaming.checkpoints import MIN_PAD_ROWS as MIN_PAD_ROWS
from jaxmix.capabilities.streaming.checkpoints import SAMPLED_BATCHES as SAMPLED_BATCHES
from jaxmix.capabilities.streaming.gmm import gmm as gmm
from jaxmix.capabilities.streaming.kmeans import kmeans as kmeans
from jaxmix.capabilities.streaming.predict import predict as predict
from jaxmix.capabilities.streaming.soft_kmeans import soft_kmeans as soft_kmeans
