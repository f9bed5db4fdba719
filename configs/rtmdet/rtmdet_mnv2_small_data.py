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
# the backbone stages the neck reads (MobileNetV2's stages 0-6, output strides 2, 4, 8, 16, 16, 32, 32):
# (2, 4, 6) = strides 8/16/32; (1, 2, 4) = strides 4/8/16. auto_stages takes stages=(1, 2, 4) with a 32-channel
# neck and head (about the multiply-accumulates of the default) when the training split's median object side is
# under 64 px at imgsz (sscma/apis/data_defaults.py; printed at the start of training). On the benchmark suite
# it raised val mAP50 on the five datasets with objects of 5-40 px and cost 0.05 on the one of 100 px
# (docs/benchmarks.md). stages or neck_channels in --cfg-options, or auto_stages=None, are kept as given.
stages = (2, 4, 6)
auto_stages = dict(max_object_px=64, small=dict(stages=(1, 2, 4), neck_channels=32))
mnv2_channels = (16, 24, 32, 64, 96, 160, 320)  # at width 1.0; rounded to 8 below as the backbone rounds them
mnv2_strides = (2, 4, 8, 16, 16, 32, 32)
stage_channels = [max(8, int(mnv2_channels[i] * widen_factor + 4) // 8 * 8) for i in stages]
stage_channels = [c + 8 if c < 0.9 * mnv2_channels[i] * widen_factor else c for c, i in zip(stage_channels, stages)]
model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], bgr_to_rgb=True),
    backbone=dict(_delete_=True, type='MobileNetV2', widen_factor=widen_factor, out_indices=stages, tf_padding=True,
                  init_cfg=dict(type='DistilledMobileNetV2') if init == 'imagenet' else None),
    neck=dict(in_channels=stage_channels, out_channels=neck_channels),
    bbox_head=dict(in_channels=neck_channels, feat_channels=neck_channels,
                   anchor_generator=dict(strides=[mnv2_strides[i] for i in stages])),
)
