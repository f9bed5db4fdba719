"""GaussianAnomalyDetector: the fitted statistics and the anomaly map against an independent numpy computation."""
import numpy as np
import pytest
import torch

from sscma.models.detectors import GaussianAnomalyDetector

BACKBONE = dict(type='MobileNetV2', widen_factor=0.1, out_indices=(2, 3))


def build(per_cell=True, **kw):
    return GaussianAnomalyDetector(BACKBONE, input_size=(32, 24), per_cell=per_cell, smooth=1, **kw).eval()


def reference_map(fit: np.ndarray, x: np.ndarray, per_cell: bool, eps: float) -> np.ndarray:
    """The documented model, in float64 numpy: (N, D, h, w) fitted features, (D, h, w) features scored."""
    n, d, h, w = fit.shape
    cells = fit.transpose(2, 3, 0, 1).reshape(h * w, n, d)  # (cells, N, D)
    groups = cells if per_cell else cells.reshape(1, -1, d)
    means = groups.mean(1)
    covs = np.stack([np.cov(g.T, bias=True) for g in groups])
    pooled = covs.mean(0)
    pooled = pooled + eps * np.trace(pooled) / d * np.eye(d)
    vals, vecs = np.linalg.eigh(pooled)
    whiten = vecs @ np.diag(vals ** -0.5) @ vecs.T
    z = x.reshape(d, -1).T @ whiten.T  # (cells, D)
    zm = means @ whiten.T
    zv = np.einsum('kd,gde,ke->gk', whiten, covs, whiten) + eps
    if not per_cell:
        zm, zv = np.repeat(zm, h * w, 0), np.repeat(zv, h * w, 0)
    return (((z - zm) ** 2 / zv).mean(1)).reshape(h, w)


@pytest.mark.parametrize('per_cell', [True, False])
def test_map_matches_the_formula_on_hand_made_features(per_cell):
    model = build(per_cell)
    d, (h, w) = model.channels, model.cells
    assert (h, w) == (3, 4) and model.stride == 8
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(d, d))  # correlated channels, a different mean per cell
    fit = np.einsum('de,nehw->ndhw', mixing, rng.normal(size=(40, d, h, w))) + rng.normal(size=(1, d, h, w)) * 3
    model.accumulate(torch.from_numpy(fit[:25]).float())
    model.accumulate(torch.from_numpy(fit[25:]).float())  # two batches sum like one
    model.finalize()
    assert int(model.fitted_images) == 40
    probe = fit[0] + rng.normal(size=(d, h, w))
    got = model.anomaly_map(torch.from_numpy(probe[None]).float())[0, 0].double().numpy()
    want = reference_map(fit, probe, per_cell, model.eps)
    np.testing.assert_allclose(got, want, rtol=2e-4)
    model.threshold.fill_(2.0)  # the map is in units of the stored threshold
    np.testing.assert_allclose(model.anomaly_map(torch.from_numpy(probe[None]).float())[0, 0].double().numpy(),
                               want / 2, rtol=2e-4)


def test_a_cell_unlike_the_fitted_ones_scores_highest():
    model = build(clip=None)
    d, (h, w) = model.channels, model.cells
    rng = np.random.default_rng(1)
    model.accumulate(torch.from_numpy(rng.normal(size=(30, d, h, w))).float())
    probe = rng.normal(size=(1, d, h, w)) * 0.5
    probe[0, :, 2, 1] += 6.0
    model.finalize()
    amap = model.anomaly_map(torch.from_numpy(probe).float())
    assert tuple(amap.shape) == (1, 1, h, w)
    assert np.unravel_index(int(amap.argmax()), (h, w)) == (2, 1)
    sample = type('S', (), {})()
    fields = {}
    sample.set_field = lambda v, k: fields.__setitem__(k, v)
    model.add_predictions(amap, [sample])
    assert fields['anomaly_score'] == pytest.approx(float(amap.max())) and fields['anomaly_map'].shape == (h, w)


def test_clip_bounds_each_term():
    model = build(clip=2.0)
    d, (h, w) = model.channels, model.cells
    model.accumulate(torch.from_numpy(np.random.default_rng(2).normal(size=(20, d, h, w))).float())
    model.finalize()
    assert float(model.anomaly_map(torch.full((1, d, h, w), 1e3)).max()) <= 4.0 + 1e-5


def test_checkpoint_holds_statistics_not_sums():
    model = build()
    d, (h, w) = model.channels, model.cells
    model.accumulate(torch.randn(8, d, h, w))
    state = model.state_dict()  # finalises first
    assert not any(k.startswith('_') for k in state) and int(state['fitted_images']) == 8
    assert state['cell_mean'].shape == (1, d, h, w) and not torch.equal(state['whiten'], torch.eye(d))


def test_fitting_pass_keeps_the_backbone_frozen():
    model = build(data_preprocessor=dict(type='ClsDataPreprocessor', mean=[0.0] * 3, std=[255.0] * 3))
    model.train()
    assert not model.backbone.training and not any(p.requires_grad for p in model.parameters())
    out = model.train_step(dict(inputs=[torch.randint(0, 255, (3, 24, 32), dtype=torch.uint8)] * 2,
                                data_samples=None))
    assert float(out['images']) == 2 and float(out['loss']) == 0
    with pytest.raises(RuntimeError, match='fitted, not trained'):
        model(torch.zeros(1, 3, 24, 32), mode='loss')


def test_input_size_must_be_a_multiple_of_the_stride():
    with pytest.raises(ValueError, match='multiples of the feature stride 8'):
        GaussianAnomalyDetector(BACKBONE, input_size=(30, 24))
    model = build()
    with pytest.raises(ValueError, match='expected \\(3, 4\\)'):
        model.accumulate(torch.zeros(1, model.channels, 4, 4))
