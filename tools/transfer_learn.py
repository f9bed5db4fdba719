"""Transfer learning from a Sony AITRIOS-style ``configuration.json``.

    python tools/transfer_learn.py configuration.json [--config CONFIG] [--cfg-options k=v ...]

Keys: ``source_model`` (an sscma .pth; empty or absent: MobileNetV2-1.0 with ImageNet weights),
``dataset_training_dir``, ``dataset_validation_dir`` (``<class>/*.jpg``), ``batch_size``, ``input_tensor_size``
(int or [height, width]), ``epochs``, ``output_dir`` (checkpoints, logs), ``evaluate_result_dir``
(``results.json`` with top-1 and the other classification metrics). Every key is checked before training.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('transfer-learn')  # the same as `sscma transfer-learn` (sscma/cli/transfer_learn.py)
