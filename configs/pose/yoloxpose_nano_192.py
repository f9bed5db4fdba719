# Multi-object pose at 192x192 (a Grove Vision AI V2-class board): mmdet's CSPNeXt backbone and PAFPN at nano
# width (RTMDet-nano's) with mmpose's YOLOX-Pose head: boxes + K keypoints with visibility per object, one
# stage, no heatmaps. With no data_root it trains on the generated figures (17 COCO keypoints); for your data:
# --cfg-options data_root=/path/to/export num_keypoints=K (the 4-keypoint gauges: builtin_dataset=gauges
# num_keypoints=4). Decoding + NMS are outside the exported graph.
_base_ = ['../_base_/default_runtime.py', '../_base_/schedules/adamw_cosine.py', '../_base_/datasets/pose.py']

num_classes = 1
num_keypoints = 17
imgsz = (192, 192)
max_epochs = 60
base_lr = 0.004
weight_decay = 0.05
deepen_factor = 0.33
widen_factor = 0.25
sigmas = None  # per-keypoint OKS sigmas; None: COCO's for COCO's 17 person keypoints (by name), else uniform 0.067
# The loss and the assigner take the configured sigmas, else COCO's person sigmas when there are 17 keypoints
# (set sigmas=[...] for 17 other keypoints), else uniform 0.067 (the metric reads the keypoint names instead).
coco_person_sigmas = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
                      0.087, 0.087, 0.089, 0.089]
head_sigmas = sigmas if sigmas is not None else (coco_person_sigmas if num_keypoints == 17 else None)

norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
act_cfg = dict(type='SiLU', inplace=True)
model = dict(
    type='mmpose.BottomupPoseEstimator',
    data_preprocessor=dict(type='mmpose.PoseDataPreprocessor', pad_size_divisor=32, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='mmdet.CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=deepen_factor,
                  widen_factor=widen_factor, channel_attention=True, norm_cfg=norm_cfg, act_cfg=act_cfg),
    neck=dict(type='mmdet.CSPNeXtPAFPN', in_channels=[int(256 * widen_factor * 4 * s) for s in (0.25, 0.5, 1)],
              out_channels=int(256 * widen_factor), num_csp_blocks=1, expand_ratio=0.5, norm_cfg=norm_cfg,
              act_cfg=act_cfg),
    head=dict(
        type='PackedYOLOXPoseHead', num_keypoints=num_keypoints, num_classes=num_classes, sigmas=head_sigmas,
        featmap_strides=(8, 16, 32),
        head_module_cfg=dict(num_classes=num_classes, in_channels=int(256 * widen_factor),
                             feat_channels=int(256 * widen_factor), widen_factor=1.0, stacked_convs=2,
                             norm_cfg=norm_cfg, act_cfg=act_cfg),
        prior_generator=dict(type='mmpose.MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        assigner=dict(type='mmpose.SimOTAAssigner', dynamic_k_indicator='oks',
                      oks_calculator=dict(type='mmpose.PoseOKS', metainfo=None)),  # sigmas set by the head
        overlaps_power=0.5,
        loss_cls=dict(type='mmpose.BCELoss', reduction='sum', loss_weight=1.0),
        loss_bbox=dict(type='mmpose.IoULoss', mode='square', eps=1e-16, reduction='sum', loss_weight=5.0),
        loss_obj=dict(type='mmpose.BCELoss', use_target_weight=True, reduction='sum', loss_weight=1.0),
        loss_oks=dict(type='mmpose.OKSLoss', reduction='none', norm_target_weight=True, loss_weight=30.0),
        loss_vis=dict(type='mmpose.BCELoss', use_target_weight=True, reduction='mean', loss_weight=1.0),
        loss_bbox_aux=dict(type='mmpose.L1Loss', reduction='sum', loss_weight=1.0)),
    test_cfg=dict(score_thr=0.01, nms_thr=0.65),
)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=base_lr, weight_decay=weight_decay, fused=True),
                     paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True),
                     clip_grad=dict(max_norm=0.1, norm_type=2))
default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
val_interval = 5
custom_hooks = [
    dict(type='PredictionVisHook', max_images=16, score_thr=0.3),
]
