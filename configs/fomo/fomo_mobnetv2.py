# FOMO on MobileNetV2 (widen 0.35) cut at stride 8, 96x96 RGB. With no data_root it trains on the bundled
# coin/face set; for your data: --cfg-options data_root=/path/to/roboflow_export num_classes=N.
_base_ = ['../_base_/default_runtime.py', '../_base_/schedules/adamw_cosine.py',
          '../_base_/datasets/coco_detection.py']

num_classes = 2
imgsz = (96, 96)
batch = 16
max_epochs = 60
base_lr = 0.003
widen_factor = 0.35
in_channels = 3  # 1 for grayscale (see fomo_mobnetv2_gray.py)
# backbone start: 'imagenet' = ImageNet features distilled into this width (sscma/models/weights, made by
# tools/distill_mobilenet_v2.py; torchvision's own at 1.0), 'scratch' = random initialisation
init = 'imagenet'
# input size from the data: when the training split's objects would be under 8 px at imgsz (their 25th
# percentile side), the input grows toward the images' own size, up to 160 px (sscma/apis/data_defaults.py;
# printed at the start of training). imgsz in --cfg-options, or auto_imgsz=None, keeps imgsz as given.
auto_imgsz = dict(min_object_px=8, max_side=160, multiple=8)
# stride-2 convs padded like TFLite's 'same' (bottom/right): the int8 file then has no padded copies, and the
# TFLM arena at 96x96 is 147.6 KiB instead of 238.3 KiB (docs/fomo.md)
tf_padding = True
# where the head reads MobileNetV2 (stages 0-6 end at strides 2, 4, 8, 16, 16, 32, 32): (2, ) = cells of 8 px,
# FOMO's cut; (3, ) = 16 px cells for large objects (the F1 then counts a centroid within 16 px as found)
stages = (2, )

model = dict(
    type='Fomo',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0.0] * in_channels, std=[255.0] * in_channels,
                           bgr_to_rgb=in_channels == 3, augments={{_base_.train_augments}}),
    backbone=dict(type='MobileNetV2', widen_factor=widen_factor, out_indices=stages, in_channels=in_channels,
                  tf_padding=tf_padding,
                  init_cfg=dict(type='DistilledMobileNetV2') if init == 'imagenet' else None),
    head=dict(type='FomoHead', num_classes=num_classes, mid_channels=32, object_weight=10.0, score_thr=0.5),
)
val_evaluator = dict(type='FomoMetric')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='fomo/f1', rule='greater'))
auto_scale_lr = dict(base_batch_size=16, enable=False)
custom_hooks = [
    dict(type='PredictionVisHook', max_images=16),
    dict(type='BatchAugmentSwitchHook', close_epochs=10),  # mosaic off for the last 10 epochs
]
