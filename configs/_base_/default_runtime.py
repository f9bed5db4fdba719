default_scope = 'sscma'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic_local: checkpoints are written to a temporary file and renamed, so a kill never corrupts one
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1, save_best='auto', save_last=True,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # load_from: tensors whose shape differs (a new num_classes) stay freshly initialised, reported in one line
    load_matching=dict(type='LoadMatchingWeightsHook'),
    # results.json, the loss curve and the confusion matrix, and the end-of-run summary
    summary=dict(type='RunSummaryHook'),
    # the model's loss on each validation batch: `val_loss` in the metrics, drawn against the training loss
    val_loss=dict(type='ValLossHook'),
    # stops at the first NaN / inf loss, keeping the last good checkpoint
    non_finite_loss=dict(type='NonFiniteLossHook'),
    # on CPU: torch threads + data workers <= cores, so that workers and the main process do not oversubscribe
    cpu_threads=dict(type='CpuThreadsHook'),
    # on CPU: each step reuses the memory the last one freed instead of faulting in fresh pages
    heap_reuse=dict(type='HeapReuseHook'),
    # the config's files and --cfg-options go into every checkpoint: `sscma test best.pth` needs nothing else
    config_source=dict(type='ConfigSourceHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # DDP (--launcher): gloo on CPU, nccl on GPUs (sscma.apis.distributed); dist_cfg.backend forces one
    dist_cfg=dict(timeout=1800),
)

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='mmengine.Visualizer', vis_backends=vis_backends, name='visualizer')
# training losses are smoothed over the last 10 logged values; validation losses (`val_*`) are each epoch's own
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True,
                     mean_pattern=r'^(?!val_).*(loss|time|data_time|grad_norm).*')
log_level = 'INFO'
load_from = None
resume = False
# How a model's classes meet a dataset's (tools/test.py, export evaluation, --load-from): by name, any order.
# 'shared' scores only the classes both have (docs/datasets.md, "Class names: model vs dataset").
class_match = 'name'
randomness = dict(seed=0, deterministic=False)
