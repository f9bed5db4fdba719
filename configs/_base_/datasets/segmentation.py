# Semantic segmentation: mask PNGs (img_dir/ + ann_dir/ + classes.txt), YOLO-seg polygons (images/ + labels/ +
# data.yaml) or COCO polygons / RLE (docs/segmentation.md). An empty data_root uses the generated coin/face set.
data_root = ''
builtin_dataset = 'shapes'
num_classes = 3  # background included
imgsz = (96, 96)  # (width, height) of the network input
batch = 16
workers = 'auto'  # data-loader processes; 'auto': 0 on machines with <= 2 cores, else 2
mean = [123.675, 116.28, 103.53]  # ImageNet's, as the pretrained backbone expects
std = [58.395, 57.12, 57.375]

# Random augmentations run on whole batches in the model's data preprocessor (`augments`); the masks move with
# the images, by nearest neighbour (sscma.models.data_preprocessors.geometry.DENSE_FIELDS).
train_augments = [
    dict(type='BatchRandomResizedCrop', crop_ratio_range=(0.5, 1.0), aspect_ratio_range=(0.75, 1.33)),
    dict(type='BatchHorizontalFlip', p=0.5),
    dict(type='BatchBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, p=0.5),
]
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadSegMask'),
    dict(type='SegResize', scale=imgsz),
    dict(type='PackSegInputs'),
]
test_pipeline = train_pipeline


def _split(name, pipeline, test_mode):
    return dict(type='SegmentationDataset', data_root=data_root, split=name, num_classes=num_classes,
                builtin=builtin_dataset, pipeline=pipeline, test_mode=test_mode)


train_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                        sampler=dict(type='DefaultSampler', shuffle=True), dataset=_split('train', train_pipeline, False))
val_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False), dataset=_split('val', test_pipeline, True))
test_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                       sampler=dict(type='DefaultSampler', shuffle=False), dataset=_split('test', test_pipeline, True))
val_evaluator = dict(type='SegMetric')
test_evaluator = val_evaluator
