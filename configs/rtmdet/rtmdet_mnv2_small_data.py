# RTMDet's neck and head (64 channels, as at nano width) on MobileNetV2 (stages at strides 8/16/32) for small
# exports: the backbone starts from the ImageNet-distilled weights FOMO uses (init='imagenet'; 'scratch' =
# random), so 120 images train the neck and head rather than the features. Same schedule as
# rtmdet_nano_small_data.py; the backbone takes RGB pixels / 255 as the distilled weights expect. Its stride-2
# convs pad like TFLite's 'same' (tf_padding), so the int8 file has no padded copies: at 320x320 the TFLM
# arena is set by the 160x160 expanded maps alone.
# Use: --cfg-options data_root=/path/to/export num_classes=N
_base_ = ['./rtmdet_nano_small_data.py']

widen_factor = 0.35  # the backbone's width; packaged ImageNet features: 0.1, 0.35, 1.0
init = 'imagenet'
neck_channels = 64
# MobileNetV2's channels at stages 2, 4, 6 (32, 96, 320 at width 1.0), rounded to 8 as the backbone rounds them
stage_channels = [max(8, int(c * widen_factor + 4) // 8 * 8) for c in (32, 96, 320)]
stage_channels = [s + 8 if s < 0.9 * c * widen_factor else s for s, c in zip(stage_channels, (32, 96, 320))]
model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], bgr_to_rgb=True),
    backbone=dict(_delete_=True, type='MobileNetV2', widen_factor=widen_factor, out_indices=(2, 4, 6), tf_padding=True,
                  init_cfg=dict(type='DistilledMobileNetV2') if init == 'imagenet' else None),
    neck=dict(in_channels=stage_channels, out_channels=neck_channels),
    bbox_head=dict(in_channels=neck_channels, feat_channels=neck_channels),
)
