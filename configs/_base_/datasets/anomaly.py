# Anomaly detection from normal images: the MVTec-AD layout <data_root>/train/good, test/good, test/<defect>,
# ground_truth/<defect>/*_mask.png, or plain good/bad folders (docs/anomaly.md). An empty data_root uses the
# generated set named by builtin_dataset ('coin', 'surface' or 'document'), written offline on first use.
data_root = ''
builtin_dataset = 'coin'
imgsz = (128, 128)  # (width, height) of the network input
batch = 16
workers = 'auto'  # data-loader processes; 'auto': 0 on machines with <= 2 cores, else 2
mean = [123.675, 116.28, 103.53]  # ImageNet's, as the pretrained backbone expects
std = [58.395, 57.12, 57.375]

meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'mask_path', 'defect')
# Nothing random: a model of normal images is fitted on them as they are.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='mmpretrain.Resize', scale=imgsz),
    dict(type='mmpretrain.PackInputs', meta_keys=meta_keys),
]
test_pipeline = train_pipeline


def _split(name, test_mode):
    return dict(type='AnomalyDataset', data_root=data_root, split=name, builtin=builtin_dataset,
                pipeline=test_pipeline, test_mode=test_mode)


train_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                        sampler=dict(type='DefaultSampler', shuffle=False), dataset=_split('train', False))
val_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False), dataset=_split('val', True))
test_dataloader = dict(batch_size=batch, num_workers=workers, persistent_workers=True,
                       sampler=dict(type='DefaultSampler', shuffle=False), dataset=_split('test', True))

# AnomalyThresholdHook picks the threshold on the validation images before they are scored
val_evaluator = dict(type='AnomalyMetric')
test_evaluator = val_evaluator
