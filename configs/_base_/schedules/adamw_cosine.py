# AdamW with a linear warm-up followed by cosine decay, by epoch. A config that inherits this sets
# `max_epochs`, `base_lr` and `warmup_epochs`; the fields below follow them (see sscma.utils.load_config).
# `--cfg-options epochs=N lr=X` are accepted as aliases of max_epochs and base_lr.
max_epochs = 100
base_lr = 0.001
warmup_epochs = min(3, max(max_epochs // 10, 1))
weight_decay = 0.0001
val_interval = 1

# fused: torch's one-kernel AdamW (CPU and GPU), 0.3 ms per step against 1.1 ms (FOMO) and 0.7 against 3.7 ms
# (classifier) for the per-tensor loop on 2 cores (docs/benchmarks.md)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=base_lr, weight_decay=weight_decay, fused=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max(max_epochs - warmup_epochs, 1), eta_min=base_lr * 0.01, by_epoch=True,
         begin=warmup_epochs, end=max(max_epochs, warmup_epochs + 1), convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict()
test_cfg = dict()
# base_lr was tuned for this total batch size; --auto-scale-lr rescales it to the real one.
auto_scale_lr = dict(base_batch_size=32, enable=False)
