# Multi-object keypoints (bottom-up pose) from COCO-keypoints json (Roboflow <split>/_annotations.coco.json,
# annotations/person_keypoints_<split>.json, CVAT "COCO Keypoints 1.0") or Ultralytics YOLO-pose txt (data.yaml
# with kpt_shape, flip_idx); see docs/pose.md. An empty data_root uses the generated set named by
# builtin_dataset ('figures': 17 COCO person keypoints, 'gauges': 4 meter keypoints), written offline on first use.
data_root = ''
builtin_dataset = 'figures'
num_keypoints = 17
sigmas = None  # OKS sigmas in the data's keypoint order; None: COCO's for COCO's keypoints, else uniform 0.067
imgsz = (192, 192)  # (width, height) of the network input; images are letterboxed into it
batch = 16
workers = 'auto'  # data-loader processes; 'auto': 0 on machines with <= 2 cores, else 2

codec = dict(type='mmpose.YOLOXPoseAnnotationProcessor', input_size=imgsz)
# mmpose's per-image transforms move boxes and keypoints with the image; RandomFlip swaps left and right
# keypoints by the data's flip pairs (flip_idx, or the left_* / right_* names).
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='mmpose.BottomupRandomAffine', input_size=imgsz, shift_factor=0.1, rotate_factor=10,
         scale_factor=(0.75, 1.25), scale_type='long', pad_val=114, distribution='uniform',
         transform_mode='perspective', bbox_keep_corner=False, clip_border=True),
    dict(type='mmpose.YOLOXHSVRandomAug'),
    dict(type='mmpose.RandomFlip'),
    dict(type='mmpose.FilterAnnotations', by_kpt=True, by_box=True, keep_empty=False),
    dict(type='mmpose.GenerateTarget', encoder=codec),
    dict(type='mmpose.PackPoseInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='mmpose.BottomupResize', input_size=imgsz, pad_val=(114, 114, 114)),
    dict(type='mmpose.PackPoseInputs', meta_keys=('id', 'img_id', 'img_path', 'ori_shape', 'img_shape', 'input_size',
                                                  'input_center', 'input_scale', 'raw_ann_info')),
]


def _split(name, pipeline, test_mode):
    return dict(type='PoseDataset', data_root=data_root, split=name, builtin=builtin_dataset,
                num_keypoints=num_keypoints, sigmas=sigmas, pipeline=pipeline, test_mode=test_mode)


train_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=_split('train', train_pipeline, False))
val_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
                      dataset=_split('valid', test_pipeline, True))
test_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                       sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
                       dataset=_split('test', test_pipeline, True))

# OKS AP / AP50 / AP75 with xtcocotools (mmpose's CocoMetric), ground truth from the dataset (no ann_file)
val_evaluator = dict(type='PoseMetric', score_mode='bbox', nms_mode='none')
test_evaluator = val_evaluator
