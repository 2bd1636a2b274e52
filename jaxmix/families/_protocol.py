"""The protocol a Gaussian covariance family implements (see `jaxmix.families`).

Shapes (k components, d features) are each family's own: `cov_shape` says
them. Precisions are stored as Cholesky-type factors U with precision = U U^T,
so `||(x - mu) U||^2` is the Mahalanobis distance. Every method is a pure
function of arrays, traceable under jit/vmap/grad; none raises inside a trace.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular


class CovarianceModel:
    """One covariance structure of a Gaussian mixture; subclasses fill in the methods."""

    name: str = ""
    shared: bool = False  # one covariance for all components ("tied")
    matrix: bool = False  # covariances and their factors are (.., d, d) matrices (else variances)
    mclust_name: str = ""  # the model's name in mclust's volume-shape-orientation notation
    supports_prior: bool = False  # covariance_map (a conjugate-prior MAP M-step) exists
    iterative: bool = False  # the M-step iterates (a while_loop: not reverse-differentiable)
    univariate_only: bool = False  # mclust's "E" / "V": only for one feature

    # ------------------------------------------------------------------ shapes and counts
    def cov_shape(self, k: int, d: int) -> tuple[int, ...]:
        raise NotImplementedError

    def second_shape(self, k: int, d: int) -> tuple[int, ...]:
        """Shape of the second-moment statistic."""
        raise NotImplementedError

    def n_covariance_parameters(self, k: int, d: int) -> int:
        raise NotImplementedError

    def n_parameters(self, k: int, d: int) -> int:
        """Free parameters: k - 1 weights, k d means, and the covariances."""
        return k - 1 + k * d + self.n_covariance_parameters(k, d)

    # ------------------------------------------------------------------ precisions
    def precisions_cholesky(self, cov: jax.Array) -> jax.Array:
        """Cholesky factors of the precisions from covariances (NaN if not positive definite)."""
        raise NotImplementedError

    def covariances_from_precisions_cholesky(self, prec_chol: jax.Array) -> jax.Array:
        raise NotImplementedError

    def log_det(self, prec_chol: jax.Array, d: int) -> jax.Array:
        """log |U| per component: (k,), or () for a shared covariance."""
        raise NotImplementedError

    def dense(self, cov: Any, k: int, d: int) -> Any:
        """The (k, d, d) covariance matrices `cov` stands for (NumPy in, NumPy out; JAX likewise)."""
        raise NotImplementedError

    def sample_noise(self, z: jax.Array, cov: jax.Array, labels: jax.Array) -> jax.Array:
        """(n, d) zero-mean Gaussian draws with the covariances of components `labels`, from standard normal `z`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ E-step
    def mahalanobis(self, xc: jax.Array, means: jax.Array, prec_chol: jax.Array) -> jax.Array:
        """(c, k) squared Mahalanobis distances of a chunk of rows to every component."""
        raise NotImplementedError

    def log_gaussian(self, xc: jax.Array, means: jax.Array, prec_chol: jax.Array) -> jax.Array:
        """log N(x_i; mu_k, Sigma_k) for a chunk: (c, d) -> (c, k)."""
        d = xc.shape[1]
        maha = self.mahalanobis(xc, means, prec_chol)
        return -0.5 * (d * jnp.log(2 * jnp.pi) + maha) + self.log_det(prec_chol, d)

    def second_moments(self, xc: jax.Array, r: jax.Array, wc: jax.Array) -> jax.Array:
        """The chunk's second-moment statistic; `r` (c, k) already includes the sample weights `wc`."""
        raise NotImplementedError

    def zero_second_moments(self, k: int, d: int, dtype: Any) -> jax.Array:
        return jnp.zeros(self.second_shape(k, d), dtype)

    # ------------------------------------------------------------------ M-step
    def scatter(self, second: jax.Array, nk: jax.Array, means: jax.Array) -> jax.Array:
        """Within-component scatter sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T from the moments (its own shape)."""
        raise NotImplementedError

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        """Maximum-likelihood covariances from the scatter (`nk_safe`: counts that never divide by 0).

        `previous`: the covariances before this M-step (None at the start).
        An M-step that iterates starts from them (a generalised EM step: the
        likelihood cannot fall even when the inner loop stops early).
        """
        raise NotImplementedError

    def covariance_map(self, scatter: jax.Array, n: jax.Array, dev: jax.Array, prior: Any, d: int) -> jax.Array:
        """MAP covariances under the conjugate prior (`dev`: (k, d) component mean minus prior mean)."""
        raise NotImplementedError

    def add_to_diagonal(self, cov: Any, value: Any) -> Any:
        """`cov` with `value` added to its variances (NumPy in, NumPy out: no eager JAX operation)."""
        return cov + value

    def positive_definite(self, cov: jax.Array, floor: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(covariances, precision factors), never NaN from round-off: an indefinite covariance is replaced
        by its diagonal, variances floored at `floor` (see `gmm_em._positive_definite`)."""
        raise NotImplementedError

    def prior_scale(self, data_cov: jax.Array, fac: jax.Array, d: int) -> jax.Array:
        """The default scale of the conjugate prior from the data's (d, d) covariance (scikit-learn's, times `fac`)."""
        raise NotImplementedError

    def lowest_relative_variance(self, cov: jax.Array, reg_covar: jax.Array, var: jax.Array) -> jax.Array:
        """Per component ((1,) when shared), the smallest variance along any direction once `reg_covar`
        is taken off, relative to the data's per-feature variances `var` (d,): `select`'s degeneracy test."""
        raise NotImplementedError

    def block_width(self, k: int, d: int) -> int:
        """Values per row in the widest block of an E-step or its statistics (to size chunks)."""
        return max(k, d)

    def pair_work(self, d: int) -> int:
        """Multiply-adds of one (row, component) Mahalanobis term (to size a program, `gmm.gmm_work`)."""
        return d

    def symmetrize(self, cov: jax.Array) -> jax.Array:
        return cov


class MatrixCovariance(CovarianceModel):
    """Families storing (.., d, d) covariance matrices and upper-triangular precision factors."""

    matrix = True

    def precisions_cholesky(self, cov: jax.Array) -> jax.Array:
        chol = jnp.linalg.cholesky(cov)  # lower; NaN when not PD
        eye = jnp.broadcast_to(jnp.eye(cov.shape[-1], dtype=cov.dtype), cov.shape)
        return jnp.swapaxes(solve_triangular(chol, eye, lower=True), -1, -2)

    def covariances_from_precisions_cholesky(self, prec_chol: jax.Array) -> jax.Array:
        eye = jnp.broadcast_to(jnp.eye(prec_chol.shape[-1], dtype=prec_chol.dtype), prec_chol.shape)
        inv_u = solve_triangular(prec_chol, eye, lower=False)  # U^-1
        # precision = U U^T, so covariance = U^-T U^-1.
        return jnp.swapaxes(inv_u, -1, -2) @ inv_u

    def log_det(self, prec_chol: jax.Array, d: int) -> jax.Array:
        return jnp.sum(jnp.log(jnp.diagonal(prec_chol, axis1=-2, axis2=-1)), axis=-1)

    def add_to_diagonal(self, cov: Any, value: Any) -> Any:
        d = cov.shape[-1]
        return cov + value * np.eye(d, dtype=cov.dtype)

    def symmetrize(self, cov: jax.Array) -> jax.Array:
        return 0.5 * (cov + jnp.swapaxes(cov, -1, -2))

    def positive_definite(self, cov: jax.Array, floor: jax.Array) -> tuple[jax.Array, jax.Array]:
        prec = self.precisions_cholesky(cov)
        ok = jnp.all(jnp.isfinite(prec), axis=(-2, -1))[..., None, None]
        d = cov.shape[-1]
        eye = jnp.eye(d, dtype=cov.dtype)
        var = jnp.maximum(jnp.diagonal(cov, axis1=-2, axis2=-1), floor)[..., None]
        return jnp.where(ok, cov, var * eye), jnp.where(ok, prec, eye / jnp.sqrt(var))

    def prior_scale(self, data_cov: jax.Array, fac: jax.Array, d: int) -> jax.Array:
        return fac * data_cov

    def lowest_relative_variance(self, cov: jax.Array, reg_covar: jax.Array, var: jax.Array) -> jax.Array:
        cov = cov[None] if self.shared else cov
        d = cov.shape[-1]
        scale = jnp.sqrt(var)
        data_part = (cov - reg_covar * jnp.eye(d, dtype=cov.dtype)) / (scale[:, None] * scale[None, :])
        return jnp.min(jnp.linalg.eigvalsh(data_part), axis=-1)


class VarianceCovariance(CovarianceModel):
    """Families storing variances (diagonal or scalar) and their inverse square roots."""

    def precisions_cholesky(self, cov: jax.Array) -> jax.Array:
        return jnp.where(cov > 0, 1.0 / jnp.sqrt(jnp.where(cov > 0, cov, 1.0)), jnp.nan)

    def covariances_from_precisions_cholesky(self, prec_chol: jax.Array) -> jax.Array:
        return 1.0 / prec_chol**2

    def second_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (k, d)

    def second_moments(self, xc: jax.Array, r: jax.Array, wc: jax.Array) -> jax.Array:
        return ((xc * xc).T @ r).T

    def scatter(self, second: jax.Array, nk: jax.Array, means: jax.Array) -> jax.Array:
        return jnp.maximum(second - nk[:, None] * means * means, 0.0)

    def positive_definite(self, cov: jax.Array, floor: jax.Array) -> tuple[jax.Array, jax.Array]:
        cov = jnp.maximum(cov, floor)
        return cov, self.precisions_cholesky(cov)

    def prior_scale(self, data_cov: jax.Array, fac: jax.Array, d: int) -> jax.Array:
        return fac * jnp.trace(data_cov) / d
