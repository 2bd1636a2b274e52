"""scikit-learn's own estimator checks on jaxmix.sklearn.MiniBatchKMeans."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from jaxmix.sklearn import MiniBatchKMeans

# The only expected failures are those scikit-learn lists for its own
# MiniBatchKMeans (sklearn/utils/_test_common/instance_generator.py).
SKLEARN_XFAILS = {
    "check_sample_weight_equivalence_on_dense_data": "sample_weight is not equivalent to removing/repeating samples.",
    "check_sample_weight_equivalence_on_sparse_data": "sample_weight is not equivalent to removing/repeating samples.",
}


# The small settings scikit-learn uses for its own MiniBatchKMeans in these checks.
@parametrize_with_checks(
    [MiniBatchKMeans(n_clusters=2, n_init=2, max_iter=5, batch_size=10)],
    expected_failed_checks=lambda est: SKLEARN_XFAILS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
