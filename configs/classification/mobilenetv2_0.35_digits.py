# MobileNetV2 (widen 0.35) image classifier. With no data_root it trains on the bundled handwritten digits;
# point data_root at a Sony-layout folder (training/validation/test/<class>/, labels.json) for your own data.
_base_ = ['../_base_/default_runtime.py', '../_base_/schedules/adamw_cosine.py',
          '../_base_/datasets/image_folder.py']

num_classes = 10
imgsz = (32, 32)
max_epochs = 30
base_lr = 0.004
widen_factor = 0.35
# backbone start: 'imagenet' = ImageNet features distilled into this width (sscma/models/weights, made by
# tools/distill_mobilenet_v2.py; torchvision's own at 1.0), 'scratch' = random initialisation
init = 'imagenet'
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]

model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=num_classes, mean=mean, std=std, to_rgb=True,
                           augments={{_base_.train_augments}}),
    backbone=dict(type='MobileNetV2', widen_factor=widen_factor, out_indices=(7, ),
                  init_cfg=dict(type='DistilledMobileNetV2') if init == 'imagenet' else None),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(type='mmpretrain.LinearClsHead', num_classes=num_classes, in_channels=1280,
              loss=dict(type='mmpretrain.LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0)),
)
