# PFLD-style keypoint regression for analog meter reading: ImageNet MobileNetV2 1.0 to stride 16 + PFLDHead
# regressing 4 normalised keypoints (dial centre, needle tip, scale start, scale end), 112x112 input.
# With no data_root it trains on the bundled generated meters (offline); for your data:
#   --cfg-options data_root=/path/to/coco_keypoints_or_labelme keypoint_names="['c','tip','s','e']"
_base_ = ['../_base_/default_runtime.py', '../_base_/schedules/adamw_cosine.py',
          '../_base_/datasets/meter_keypoints.py']

num_keypoints = 4
imgsz = (112, 112)
batch = 32
max_epochs = 15
base_lr = 0.002
widen_factor = 1.0
pretrained = True  # torchvision's ImageNet weights (widen_factor 1.0 only), offline: tools/env.sh installs them
data_root = ''

model = dict(
    type='KeypointRegressor',
    input_size=imgsz,
    # ImageNet statistics (RGB), as the pretrained backbone expects
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    backbone=dict(type='MobileNetV2', widen_factor=widen_factor, out_indices=(4, ),
                  init_cfg=dict(type='TorchvisionMobileNetV2') if pretrained else None),
    head=dict(type='PFLDHead', num_keypoints=num_keypoints, mid_channels=32, fc_channels=128, coord_scale=100.0,
              loss=dict(type='WingLoss', omega=10.0, epsilon=2.0)),
)
default_hooks = dict(checkpoint=dict(save_best='meter/reading_err_median', rule='less'))
auto_scale_lr = dict(base_batch_size=32, enable=False)
custom_hooks = [
    dict(type='PredictionVisHook', max_images=16),
]
