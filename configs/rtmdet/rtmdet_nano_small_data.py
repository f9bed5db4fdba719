# RTMDet-nano for small exports (about 100-200 training images): the 96x96 model trained for more steps per
# image at a higher lr, with weight EMA (mmdet's ExpMomentumEMA, as in mmdet's RTMDet recipe) and validation
# every 10 epochs: on 120 images the 96 config's schedule is too few steps to converge; see
# docs/benchmarks.md for what this one reaches. Use: --cfg-options data_root=/path/to/export num_classes=N
_base_ = ['./rtmdet_nano_96.py']

max_epochs = 120
base_lr = 0.004
val_interval = 10
custom_hooks = [
    dict(type='EMAHook', ema_type='mmdet.ExpMomentumEMA', momentum=0.0002, update_buffers=True, priority=49),
    dict(type='PredictionVisHook', max_images=16, score_thr=0.3),
    dict(type='BatchAugmentSwitchHook', close_epochs=10),
]
