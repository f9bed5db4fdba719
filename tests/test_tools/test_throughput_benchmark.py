"""tools/benchmarks/throughput.py's pairing of each training epoch with the ceiling probes around it."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def throughput():
    spec = importlib.util.spec_from_file_location('throughput', osp.join(REPO, 'tools', 'benchmarks',
                                                                         'throughput.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_epoch_is_paired_with_the_probes_either_side(throughput):
    timer = throughput.TrainEpochTimer()
    # 3 epochs of 100 images in 1 s; the VM slows down between probes 1 and 3
    timer.epochs = [(1.0, 100)] * 3
    timer.compute = [[0.2] * 4, [0.2] * 4, [0.1] * 4]  # seconds of forward + backward + step per iteration
    timer.probes = [400.0, 200.0, 100.0, 300.0]
    loop, compute = timer.adjacent_ratios()
    # the first epoch (caches filling) is left out; epoch 2: 100 img/s over (200 + 100) / 2, epoch 3: over 200
    assert loop == pytest.approx([100 / 150, 100 / 200])
    assert compute == pytest.approx([100 / 0.8 / 150, 100 / 0.4 / 200])
    assert throughput.steady_rate(timer.epochs) == pytest.approx(100.0)


def test_per_iteration_times_leave_out_the_first_epoch(throughput):
    timer = throughput.TrainEpochTimer()
    for epoch, (step, between) in enumerate([(0.09, 0.010), (0.05, 0.002), (0.05, 0.002)]):
        timer.before_train_epoch(None)
        timer.step += [step] * 3
        timer.preprocess += [0.005] * 3
        timer.between += [between] * 2
    steps, preprocesses, betweens = timer.steady()
    assert steps == [0.05] * 6 and preprocesses == [0.005] * 6 and betweens == [0.002] * 4
    assert throughput.TrainEpochTimer().steady() == ([], [], [])
