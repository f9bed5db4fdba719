# Semantic segmentation at 96x96: torchvision's ImageNet MobileNetV2-1.0 (offline weights) to stride 16 + an
# LR-ASPP decoder, logits at stride 8 resized to the image outside the graph. With no data_root it trains on
# the generated coin/face set; for your data: --cfg-options data_root=/path/to/export num_classes=N.
_base_ = ['../_base_/default_runtime.py', '../_base_/schedules/adamw_cosine.py',
          '../_base_/datasets/segmentation.py']

num_classes = 3
imgsz = (96, 96)
mean = [123.675, 116.28, 103.53]
std = [58.395, 57.12, 57.375]
max_epochs = 30
base_lr = 0.002

model = dict(
    type='SemanticSegmentor',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=mean, std=std, to_rgb=True,
                           augments={{_base_.train_augments}}),
    backbone=dict(type='MobileNetV2', widen_factor=1.0, out_indices=(2, 4),
                  init_cfg=dict(type='TorchvisionMobileNetV2')),
    head=dict(type='LRASPPHead', num_classes=num_classes, channels=64),
    input_size=imgsz)
default_hooks = dict(checkpoint=dict(save_best='seg/mIoU', rule='greater'))
custom_hooks = [
    dict(type='PredictionVisHook', max_images=16),
]
