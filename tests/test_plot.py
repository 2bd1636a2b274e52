"""`jaxmix.plot`: every figure renders headlessly, ellipse counts, mixed colours, errors."""

import jax
import numpy as np
import pytest

import jaxmix
from jaxmix.families.params import GMMParams

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

FAITHFUL = np.asarray(jaxmix.datasets.load_faithful(), dtype=np.float32)
Z = (FAITHFUL - FAITHFUL.mean(0)) / FAITHFUL.std(0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fits():
    key = jax.random.key(0)
    return {
        "kmeans": [jaxmix.kmeans(jax.random.key(s), Z, 2, max_iter=20) for s in range(2)],
        "soft": jaxmix.soft_kmeans(key, Z, 2, beta=2.0, max_iter=20),
        "gmm": jaxmix.gmm(key, Z, 2, max_iter=20),
    }


def _params(ctype, k=3, d=2):
    rng = np.random.default_rng(0)
    means = rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d))
    cov = {
        "full": a @ a.transpose(0, 2, 1) + np.eye(d),
        "tied": a[0] @ a[0].T + np.eye(d),
        "diag": rng.uniform(0.5, 2.0, size=(k, d)),
        "spherical": rng.uniform(0.5, 2.0, size=(k,)),
    }[ctype]
    f32 = np.float32
    return GMMParams.from_covariances(np.full(k, 1.0 / k, f32), means.astype(f32), cov.astype(f32), ctype)


def _assert_drawn(ax, path):
    ax.figure.savefig(path)
    img = mpimg.imread(path)[..., :3]
    assert img.std() > 0
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 1


def test_scatter_hard_and_soft(fits, tmp_path):
    r = fits["kmeans"][0]
    ax = jaxmix.plot.scatter(Z, r.labels, centers=r.centers)
    assert len(ax.collections) == 2
    _assert_drawn(ax, tmp_path / "hard.png")
    ax = jaxmix.plot(fits["soft"], x=Z, path=tmp_path / "soft.png")
    _assert_drawn(ax, tmp_path / "soft2.png")
    ax = jaxmix.plot(fits["gmm"], x=Z)
    assert len(ax.patches) == 4  # 2 components x sigmas (1, 2)
    _assert_drawn(ax, tmp_path / "gmm.png")


def test_soft_assignments_get_mixed_colours():
    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    ax = jaxmix.plot.scatter(x, proba=proba)
    rgb = ax.collections[0].get_facecolors()[:, :3]
    assert not np.allclose(rgb[2], rgb[0]) and not np.allclose(rgb[2], rgb[1])
    assert np.allclose(rgb[2], (rgb[0] + rgb[1]) / 2)


@pytest.mark.parametrize("ctype", ["full", "tied", "diag", "spherical"])
def test_ellipses_count(ctype, tmp_path):
    ax = jaxmix.plot.ellipses(_params(ctype), sigmas=(1, 2, 3))
    assert len(ax.patches) == 9
    _assert_drawn(ax, tmp_path / f"{ctype}.png")


def test_ellipses_project_higher_dimensions():
    p = _params("full", k=2, d=4)
    x = np.random.default_rng(1).normal(size=(50, 4))
    ax = jaxmix.plot.scatter(x)
    jaxmix.plot.ellipses(p, x=x, ax=ax)
    assert len(ax.patches) == 4 and ax.get_xlabel().startswith("PC1")
    assert len(jaxmix.plot.ellipses(p).patches) == 4  # first two features without x


def test_pca_and_scatter_project(tmp_path):
    x = np.random.default_rng(0).normal(size=(80, 5)) * np.array([5, 3, 1, 1, 1])
    ax = jaxmix.plot.pca(x, np.arange(80) % 3)
    assert ax.get_xlabel().startswith("PC1")
    _assert_drawn(ax, tmp_path / "pca.png")
    assert jaxmix.plot.scatter(x).get_ylabel().startswith("PC2")


def test_regions(fits, tmp_path):
    for model in (fits["kmeans"][0], np.asarray(fits["kmeans"][0].centers), fits["gmm"], fits["soft"]):
        ax = jaxmix.plot.regions(model, Z, resolution=40)
        _assert_drawn(ax, tmp_path / "regions.png")
        plt.close(ax.figure)
    ax = jaxmix.plot.regions(np.array([[-1.0, 0.0], [1.0, 0.0]]), Z, resolution=20)
    mesh = ax.collections[0].get_array().reshape(20, 20)
    assert set(np.unique(mesh)) == {0, 1}


def test_history(fits, tmp_path):
    ax = jaxmix.plot.history(fits["kmeans"])
    assert len(ax.get_lines()) == 2
    y = ax.get_lines()[0].get_ydata()
    assert len(y) == int(fits["kmeans"][0].n_iter) and np.all(np.diff(y) <= 1e-3)
    _assert_drawn(ax, tmp_path / "hist.png")
    ax = jaxmix.plot.history(fits["gmm"])
    assert "log-likelihood" in ax.get_ylabel()
    jaxmix.plot.history(fits["soft"])
    batch = jax.vmap(lambda k: jaxmix.kmeans(k, Z, 2, max_iter=20))(jax.random.split(jax.random.key(3), 3))
    lines = jaxmix.plot.history(batch).get_lines()
    assert [len(line.get_ydata()) for line in lines] == [int(n) for n in batch.n_iter]


def test_errors(fits):
    p = jaxmix.plot
    cases = [
        (lambda: p(fits["gmm"]), TypeError, "x=data"),
        (lambda: p("result"), TypeError, "SelectResult"),
        (lambda: p.scatter(np.zeros(5)), ValueError, "2-D"),
        (lambda: p.scatter(np.zeros((5, 1))), ValueError, "at least 2 features"),
        (lambda: p.scatter("abc"), TypeError, "numeric"),
        (lambda: p.scatter(Z, np.zeros(3, int)), ValueError, "labels must have shape"),
        (lambda: p.scatter(Z, np.full(272, 0.5)), TypeError, "integers"),
        (lambda: p.scatter(Z, proba=np.ones((3, 2))), ValueError, "proba must have shape"),
        (lambda: p.scatter(Z, np.zeros(272, int), proba=np.ones((272, 2))), ValueError, "not both"),
        (lambda: p.scatter(Z, centers=np.zeros((2, 3))), ValueError, "centers must have shape"),
        (lambda: p.ellipses(np.zeros((2, 2))), TypeError, "GMMParams"),
        (lambda: p.ellipses(fits["gmm"], sigmas=(0,)), ValueError, "sigmas"),
        (lambda: p.regions(fits["kmeans"][0], Z, resolution=1), ValueError, "resolution"),
        (lambda: p.regions(fits["kmeans"][0], Z, resolution=2.5), TypeError, "resolution"),
        (lambda: p.regions(np.zeros((2, 3)), Z), ValueError, "centers must have shape"),
        (lambda: p.regions(object(), Z), TypeError, "centres array"),
        (lambda: p.history([]), ValueError, "at least one"),
        (lambda: p.history([fits["gmm"], fits["soft"]]), ValueError, "one kind"),
        (lambda: p.history(Z), TypeError, "KMeansResult"),
        (lambda: p.selection(fits["gmm"]), TypeError, "SelectResult"),
        (lambda: p.scatter(Z, ax="axes"), TypeError, "Axes"),
    ]
    for fn, err, msg in cases:
        with pytest.raises(err, match=msg):
            fn()


def test_large_data_is_drawn_as_a_sample_and_the_figure_says_so():
    # Issue 17 item 11: a million points took 9.5 s and drew solid blobs.
    x = np.random.default_rng(0).normal(size=(400, 2))
    ax = jaxmix.plot.scatter(x, np.arange(400) % 3, max_points=100)
    assert len(ax.collections[0].get_offsets()) == 100
    assert any("100 of 400 points drawn" in t.get_text() for t in ax.texts)
    ax = jaxmix.plot.scatter(x, np.arange(400) % 3, ax=plt.subplots()[1])
    assert len(ax.collections[0].get_offsets()) == 400 and not ax.texts  # under MAX_POINTS: all of them
    with pytest.raises(ValueError, match="max_points"):
        jaxmix.plot.scatter(x, max_points=0)


def test_legend_names_label_numbers_and_a_mixture_has_means(fits):
    # Issue 17 item 11: no legend from colours to the numbers in labels.csv; a mixture's means were "centres".
    r = fits["kmeans"][0]
    ax = jaxmix.plot.scatter(Z, r.labels, centers=r.centers)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cluster 0", "cluster 1", "centres"]
    ax = jaxmix.plot(fits["gmm"], x=Z)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["component 0", "component 1", "means"]
    assert len(ax.patches) == 4  # 1- and 2-sigma ellipses of both components


# --- mclust's figures of a fitted mixture (issue 19) -----------------------------


def test_classification_uncertainty_density_and_pairs_render(tmp_path):
    import pandas as pd

    x = np.asarray(jaxmix.datasets.load_faithful())
    df = pd.DataFrame(x, columns=["eruptions", "waiting"])
    g = jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="full")
    ax = jaxmix.plot.classification(g, df, path=tmp_path / "c.png")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("eruptions", "waiting")
    assert len(ax.patches) == 2 and mpimg.imread(tmp_path / "c.png").shape[2] in (3, 4)
    assert jaxmix.plot(g, x=df).get_xlabel() == "eruptions"
    ax = jaxmix.plot.uncertainty(g, x, names=["a", "b"])
    sizes = ax.collections[0].get_sizes()
    p = np.asarray(jaxmix.predict_proba(g.params, x))
    u = 1 - p.max(axis=1)
    # The 5% most uncertain rows are drawn largest.
    assert np.all(sizes[u > np.quantile(u, 0.95)] == sizes.max()) and ax.get_xlabel() == "a"
    ax = jaxmix.plot.density(g, df)
    assert len(ax.collections) >= 2 and ax.get_ylabel() == "waiting"  # contours and the data
    g1 = jaxmix.gmm(jax.random.key(0), x[:, 1:], 2, covariance_type="spherical")
    ax = jaxmix.plot.density(g1, x[:, 1:])
    line = ax.get_lines()[0]
    # The drawn mixture density integrates to about 1 over the padded range of the data.
    assert abs(np.trapezoid(line.get_ydata(), line.get_xdata()) - 1.0) < 0.02
    assert jaxmix.plot.classification(g1, x[:, 1:]).get_ylabel() == "component"
    x3 = np.random.default_rng(0).normal(size=(120, 3)).astype(np.float32)
    g3 = jaxmix.gmm(jax.random.key(0), x3, 2, covariance_type="diag")
    axs = jaxmix.plot.pairs(g3, x3, names=["u", "v", "w"], path=tmp_path / "p.png")
    assert axs.shape == (3, 3) and axs[2, 0].get_xlabel() == "u" and axs[1, 0].get_ylabel() == "v"
    assert len(axs[0, 1].patches) == 2  # one marginal ellipse per component
    assert jaxmix.plot.classification(g3, x3).get_xlabel().startswith("PC1")
    with pytest.raises(ValueError, match="one or two features"):
        jaxmix.plot.density(g3, x3)
    with pytest.raises(ValueError, match="names has 1 entries"):
        jaxmix.plot.uncertainty(g, x, names=["a"])
    with pytest.raises(TypeError, match="GMMParams or GMMResult"):
        jaxmix.plot.pairs("nope", x3)
    plt.close("all")
