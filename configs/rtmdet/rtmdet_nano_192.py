# A tiny YOLO-class detector from mmdet's parts (RTMDet: CSPNeXt backbone, CSPNeXt-PAFPN, RTMDet head)
# at nano width, 192x192, evaluated with pycocotools mAP (mmdet.CocoMetric). With no data_root it trains on
# the bundled coin/face set. Decoding + NMS are outside the exported graph (tensor mode gives raw maps).
_base_ = ['../_base_/default_runtime.py', '../_base_/schedules/adamw_cosine.py',
          '../_base_/datasets/coco_detection.py']

num_classes = 2
imgsz = (192, 192)
batch = 16
max_epochs = 40
base_lr = 0.002
weight_decay = 0.05
deepen_factor = 0.33
widen_factor = 0.25
# CocoMetric needs each image's raw annotations when it has no ann_file: pack them as meta.
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'instances')

norm_cfg = dict(type='BN')
act_cfg = dict(type='SiLU', inplace=True)
model = dict(
    type='mmdet.RTMDet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                           std=[57.375, 57.12, 58.395], bgr_to_rgb=False, augments={{_base_.train_augments}}),
    backbone=dict(type='mmdet.CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=deepen_factor,
                  widen_factor=widen_factor, channel_attention=True, norm_cfg=norm_cfg, act_cfg=act_cfg),
    neck=dict(type='mmdet.CSPNeXtPAFPN', in_channels=[int(256 * widen_factor * 4 * s) for s in (0.25, 0.5, 1)],
              out_channels=int(256 * widen_factor), num_csp_blocks=1, expand_ratio=0.5, norm_cfg=norm_cfg,
              act_cfg=act_cfg),
    bbox_head=dict(type='mmdet.RTMDetSepBNHead', num_classes=num_classes, in_channels=int(256 * widen_factor),
                   stacked_convs=2, feat_channels=int(256 * widen_factor),
                   anchor_generator=dict(type='mmdet.MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
                   bbox_coder=dict(type='mmdet.DistancePointBBoxCoder'),
                   loss_cls=dict(type='mmdet.QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
                   loss_bbox=dict(type='mmdet.GIoULoss', loss_weight=2.0), with_objectness=False, exp_on_reg=False,
                   share_conv=True, pred_kernel_size=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
    train_cfg=dict(assigner=dict(type='mmdet.DynamicSoftLabelAssigner', topk=13), allowed_border=-1, pos_weight=-1,
                   debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.001, nms=dict(type='nms', iou_threshold=0.65),
                  max_per_img=100),
)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=base_lr, weight_decay=weight_decay, fused=True),
                     paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
val_evaluator = dict(type='mmdet.CocoMetric', metric='bbox', classwise=True)
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='coco/bbox_mAP_50', rule='greater'))
val_interval = 5
custom_hooks = [
    dict(type='PredictionVisHook', max_images=16, score_thr=0.3),
    dict(type='BatchAugmentSwitchHook', close_epochs=10),  # mosaic off for the last 10 epochs
]
