# Box detection data in the format found under data_root: COCO json (Roboflow export train/_annotations.coco.json,
# valid/, test/, or annotations/instances_train.json + train/), YOLO txt (data.yaml + images/<split> +
# labels/<split>, or Roboflow's <split>/images + <split>/labels) or Pascal VOC xml (VOC2007/2012, labelImg, CVAT);
# see docs/datasets.md. An empty data_root uses the bundled coin/face set (offline).
data_root = ''
builtin_dataset = 'fomo_objects'
num_classes = 2
imgsz = (96, 96)  # (width, height) of the network input
batch = 16
workers = 'auto'  # data-loader processes; 'auto': 0 on machines with <= 2 cores (measured fastest), else 2
color_type = 'color'  # 'grayscale' for single-channel models

# Random augmentations run on whole batches inside the model's data preprocessor (sscma DetDataPreprocessor
# `augments`): the albumentations transforms of the same names, drawn per image, in a few torch operations per
# batch instead of ~1 ms of Python per image (docs/benchmarks.md). Boxes move with the images.
# mosaic: probability that a training image becomes a mosaic of four (BatchMosaic; off by default: on the
# benchmark suite it helped some datasets and hurt others, docs/benchmarks.md; `sscma tune` searches it).
# copy_paste: probability that a training image receives objects of another (BatchCopyPaste, cut by their
# boxes, pasted where they were); mixup: that it is blended with another (BatchMixUp). Both off by default
# (measured on the suite in docs/benchmarks.md). Configs with BatchAugmentSwitchHook turn the three off for the
# last epochs.
mosaic = 0.0
copy_paste = 0.0
mixup = 0.0
train_augments = [
    dict(type='BatchMosaic', p=mosaic),
    dict(type='BatchCopyPaste', p=copy_paste),
    dict(type='BatchAffine', scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-10, 10), p=0.7),
    dict(type='BatchHorizontalFlip', p=0.5),
    dict(type='BatchMixUp', p=mixup),
    dict(type='BatchBrightnessContrast', brightness_limit=0.25, contrast_limit=0.25, p=0.6),
    dict(type='BatchHueSaturationValue', hue_shift_limit=10, sat_shift_limit=20, val_shift_limit=15,
         p=0.4 if color_type == 'color' else 0.0),
    dict(type='BatchBlurOrNoise', blur_ksize=3, blur_sigma=(0.5, 3.0), std_range=(0.02, 0.06), p=0.2),
]
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')
cache_mb = 512  # decoded, resized and packed training samples kept in RAM per process (0: off); see CachedTransforms
# Nothing random runs here, so even the packing is cached. To add a per-image random transform (an
# `Albumentations` step), move PackDetInputs out of the cache and put the transform between the two.
train_pipeline = [
    dict(type='CachedTransforms', max_mb=cache_mb, transforms=[
        dict(type='LoadImage', color_type=color_type),
        dict(type='mmdet.LoadAnnotations', with_bbox=True),
        dict(type='mmdet.Resize', scale=imgsz, keep_ratio=False),
        dict(type='mmdet.PackDetInputs', meta_keys=meta_keys),
    ]),
]
test_pipeline = [
    dict(type='LoadImage', color_type=color_type),
    dict(type='mmdet.Resize', scale=imgsz, keep_ratio=False),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.PackDetInputs', meta_keys=meta_keys),
]


def _split(name, pipeline, test_mode):
    return dict(type='DetectionDataset', data_root=data_root, split=name, num_classes=num_classes,
                builtin=builtin_dataset, pipeline=pipeline, test_mode=test_mode)


train_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=_split('train', train_pipeline, False))
val_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=_split('valid', test_pipeline, True))
test_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=_split('test', test_pipeline, True))
