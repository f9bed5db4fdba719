# Image classification from class folders: <data_root>/{training,validation,test}/<class>/*.jpg, with an
# optional labels.json {"class": id}. An empty data_root uses the bundled handwritten digits (offline).
data_root = ''
builtin_dataset = 'digits'
num_classes = 10
imgsz = (32, 32)  # (width, height) of the network input
batch = 32
workers = 'auto'  # data-loader processes; 'auto': 0 on machines with <= 2 cores (measured fastest), else 2
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]

# Random augmentations run on whole batches inside the model's data preprocessor (sscma ClsDataPreprocessor
# `augments`): mmpretrain's RandomResizedCrop and the albumentations transforms of the same names, drawn per
# image, in a few torch operations per batch instead of ~0.15 ms of Python per image (docs/benchmarks.md).
train_augments = [
    dict(type='BatchRandomResizedCrop', crop_ratio_range=(0.75, 1.0), aspect_ratio_range=(0.85, 1.18)),
    dict(type='BatchAffine', scale=1.0, translate_percent=0.0, rotate=(-10, 10), shear=(-5, 5), p=0.5),
    dict(type='BatchBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, p=0.5),
]
cache_mb = 512  # decoded, resized and packed training images kept in RAM per process (0: off); see CachedTransforms
# Nothing random runs here, so even the packing is cached. To add a per-image random transform (an
# `Albumentations` step), move PackInputs out of the cache and put the transform between the two.
train_pipeline = [
    dict(type='CachedTransforms', max_mb=cache_mb, transforms=[
        dict(type='LoadImage'),
        dict(type='mmpretrain.Resize', scale=imgsz),
        dict(type='mmpretrain.PackInputs'),
    ]),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='mmpretrain.Resize', scale=imgsz),
    dict(type='mmpretrain.PackInputs'),
]


def _split(name, pipeline, test_mode):
    return dict(type='ImageFolderDataset', data_root=data_root, split=name, num_classes=num_classes,
                builtin=builtin_dataset, pipeline=pipeline, test_mode=test_mode)


train_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=_split('training', train_pipeline, False))
val_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=_split('validation', test_pipeline, True))
test_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=_split('test', test_pipeline, True))

val_evaluator = [
    dict(type='mmpretrain.Accuracy', topk=(1, 5) if num_classes >= 5 else (1, )),
    dict(type='mmpretrain.SingleLabelMetric', average='macro'),
    dict(type='mmpretrain.SingleLabelMetric', average=None),
    dict(type='mmpretrain.ConfusionMatrix'),
]
test_evaluator = val_evaluator
