"""What the models can do beyond one fit: select k and the covariance model, batches of problems,
fits over sources read in batches (`streaming`, `sources`), mini-batch and online fits (`online`),
implicit and gradient-based differentiation.

Built on `models`, `engine` and `families`; import nothing from `tools`.
"""
