# Whole-image keypoint regression: one object (a meter) and its keypoints per image. data_root holds a
# COCO-keypoints export (train/_annotations.coco.json, valid/, test/) or labelme point files
# (train/*.json, valid/*.json, test/*.json). An empty data_root uses the bundled analog meters (offline).
data_root = ''
builtin_dataset = 'meters'
keypoint_names = ['center', 'needle_tip', 'scale_start', 'scale_end']
num_keypoints = 4
imgsz = (112, 112)  # (width, height) of the network input
batch = 32
workers = 'auto'  # data-loader processes; 'auto': 0 on machines with <= 2 cores (measured fastest), else 2

meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')
cache_mb = 512  # decoded + resized training images kept in RAM per process (0: off); see CachedTransforms
train_pipeline = [
    dict(type='CachedTransforms', max_mb=cache_mb, transforms=[
        dict(type='LoadImage'),
        dict(type='Resize', scale=imgsz, keep_ratio=False, interpolation='area', clip_object_border=False),
    ]),
    # no flips: mirroring turns a clockwise scale into a counter-clockwise one
    dict(type='Albumentations', transforms=[
        dict(type='Affine', scale=(0.85, 1.1), translate_percent=(-0.06, 0.06), rotate=(-25, 25), shear=(-4, 4),
             border_mode=1, p=0.8),
        dict(type='RandomBrightnessContrast', brightness_limit=0.25, contrast_limit=0.25, p=0.6),
        dict(type='HueSaturationValue', hue_shift_limit=15, sat_shift_limit=25, val_shift_limit=15, p=0.4),
        dict(type='OneOf', transforms=[dict(type='GaussianBlur', blur_limit=(3, 3)),
                                       dict(type='GaussNoise', std_range=(0.02, 0.05))], p=0.25),
    ]),
    dict(type='PackKeypointInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=imgsz, keep_ratio=False, interpolation='area', clip_object_border=False),
    dict(type='PackKeypointInputs', meta_keys=meta_keys),
]


def _split(name, pipeline, test_mode):
    return dict(type='MeterKeypointDataset', data_root=data_root, split=name, keypoint_names=keypoint_names,
                num_keypoints=num_keypoints, builtin=builtin_dataset, pipeline=pipeline, test_mode=test_mode)


train_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=_split('train', train_pipeline, False))
val_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=_split('valid', test_pipeline, True))
test_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=_split('test', test_pipeline, True))
val_evaluator = dict(type='MeterMetric', reading_keypoints=(0, 1, 2, 3))
test_evaluator = val_evaluator
