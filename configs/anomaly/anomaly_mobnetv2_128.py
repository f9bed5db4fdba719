# Anomaly detection from normal images only: torchvision's ImageNet MobileNetV2-1.0 (frozen, offline weights)
# cut at stride 16, features at stride 8 fitted by a Gaussian per cell (GaussianAnomalyDetector), 128x128 RGB.
# One pass over the normal training images fits it; validation picks the threshold. For your data:
# --cfg-options data_root=/path/to/mvtec/category (train/good, test/<defect>, ground_truth/...).
_base_ = ['../_base_/default_runtime.py', '../_base_/schedules/adamw_cosine.py', '../_base_/datasets/anomaly.py']

imgsz = (128, 128)
mean = [123.675, 116.28, 103.53]  # ImageNet's, as the pretrained backbone expects
std = [58.395, 57.12, 57.375]
max_epochs = 1  # fitted in one pass: a second would add the same images again
per_cell = True  # a mean and spread per cell (aligned parts); False: one for all cells (textures)

model = dict(
    type='GaussianAnomalyDetector',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=mean, std=std, to_rgb=True),
    backbone=dict(type='MobileNetV2', widen_factor=1.0, out_indices=(2, 4),
                  init_cfg=dict(type='TorchvisionMobileNetV2')),
    input_size=imgsz, per_cell=per_cell, smooth=3, clip=4.0)
default_hooks = dict(checkpoint=dict(save_best='anomaly/image_auroc', rule='greater'))
custom_hooks = [
    dict(type='AnomalyThresholdHook'),
    dict(type='PredictionVisHook', max_images=16, every=3),  # normal and defective images
]
