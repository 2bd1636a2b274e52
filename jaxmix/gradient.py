"""Gradient-based fitting: an unconstrained parametrisation of a Gaussian mixture.

`to_raw` maps `GMMParams` to `MixtureRaw` (softmax logits for the weights,
means, Cholesky factors of the precisions with a log-parametrised diagonal);
`from_raw` maps back; `nll` is the mean negative log-likelihood of a batch, a
differentiable loss to train a mixture jointly with other JAX parameters.
`fit_gradient` minimises it by mini-batch Adam (optax).
"""

from jaxmix.capabilities.gradient import GradientFitResult as GradientFitResult
from jaxmix.capabilities.gradient import MixtureRaw as MixtureRaw
from jaxmix.capabilities.gradient import fit_gradient as fit_gradient
from jaxmix.capabilities.gradient import from_raw as from_raw
from jaxmix.capabilities.gradient import nll as nll
from jaxmix.capabilities.gradient import to_raw as to_raw

__all__ = ["GradientFitResult", "MixtureRaw", "fit_gradient", "from_raw", "nll", "to_raw"]
