"""Single-pass (streaming) fits: mini-batch k-means and online EM for Gaussian mixtures.

Both models keep a small state (centres and counts; running sufficient
statistics) and update it from one batch of rows at a time, so a data set
that does not fit in memory is read once per pass, batch by batch.

- **Mini-batch k-means** (Sculley 2010, "Web-scale k-means clustering",
  WWW '10): each batch is assigned to the nearest centres; centre k moves
  towards the weighted mean of its new rows with the per-centre learning
  rate `eta_k = w_k / (W_k + w_k)`, where `W_k` is the weight the centre has
  seen before and `w_k` the weight it receives now:
  `m_k <- m_k + (S_k - w_k m_k) / (W_k + w_k)`, `W_k <- W_k + w_k`
  (`S_k` = weighted sum of the batch rows assigned to k). This is
  scikit-learn's `MiniBatchKMeans` update (with sample weights: a count of
  1 per unit of weight), including its random reassignment of centres with
  low counts (`reassignment_ratio`) and its early stopping on an
  exponentially weighted average (EWA) of the batch inertia.
- **Online EM** (stepwise EM; Cappé and Moulines 2009, "On-line
  expectation-maximization algorithm for latent data models", JRSS-B 71(3)):
  running sufficient statistics per unit weight `s` are blended with the
  batch's, `s <- (1 - rho_t) s + rho_t s_batch`, with step size
  `rho_t = (t + t0)^(-kappa)` for the t-th update (t = 1, 2, ...),
  `kappa` in (0.5, 1], `t0 >= 0`; after each batch (past an optional
  burn-in) the closed-form M-step of `jaxmix.models.gmm` turns `s` into
  parameters. With `kappa = 1, t0 = 0` the statistics are the plain
  running average of every batch seen.

All statistics are taken about a fixed shift (the weighted mean of the
first batch), so float32 keeps its precision for data far from the origin;
the states hold centres / parameters in those shifted coordinates
(`state.centers` and `state.params` give them in data coordinates).

The update functions are pure and jit-compiled once at module level; the
drivers loop over batches on the host (an iterable source) or run each pass
as one compiled loop (an in-memory array).

Modules: `passes` (shared pieces), `minibatch_kmeans_steps` and `minibatch_kmeans`, `online_gmm`.
"""

from __future__ import annotations

from jaxmix.capabilities.online.minibatch_kmeans import minibatch_kmeans as minibatch_kmeans
from jaxmix.capabilities.online.minibatch_kmeans_steps import KMEANS_INIT_METHODS as KMEANS_INIT_METHODS
from jaxmix.capabilities.online.minibatch_kmeans_steps import MiniBatchKMeansResult as MiniBatchKMeansResult
from jaxmix.capabilities.online.minibatch_kmeans_steps import MiniBatchKMeansState as MiniBatchKMeansState
from jaxmix.capabilities.online.minibatch_kmeans_steps import minibatch_kmeans_init as minibatch_kmeans_init
from jaxmix.capabilities.online.minibatch_kmeans_steps import minibatch_kmeans_update as minibatch_kmeans_update
from jaxmix.capabilities.online.online_gmm import GMM_INIT_METHODS as GMM_INIT_METHODS
from jaxmix.capabilities.online.online_gmm import OnlineGMMResult as OnlineGMMResult
from jaxmix.capabilities.online.online_gmm import OnlineGMMState as OnlineGMMState
from jaxmix.capabilities.online.online_gmm import online_gmm as online_gmm
from jaxmix.capabilities.online.online_gmm import online_gmm_init as online_gmm_init
from jaxmix.capabilities.online.online_gmm import online_gmm_update as online_gmm_update
from jaxmix.capabilities.online.passes import NO_LIMIT as NO_LIMIT
