"""The models: k-means (Lloyd, Hamerly), soft k-means and Gaussian mixtures (EM on any covariance family),
their parameters, and the likelihood toolbox (`mixture.py`: log_prob, predict, sample, bic...).

Built on `jaxmix.engine` and `jaxmix.families`; import nothing from `capabilities` or `tools`.
"""
