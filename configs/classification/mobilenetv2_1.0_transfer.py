# MobileNetV2 1.0 fine-tuned from a checkpoint (`--load-from`): the ImageNet weights converted by
# tools/convert_torchvision_mobilenet_v2.py or an earlier sscma run. The backbone is frozen (weights and
# BatchNorm statistics) for the first `freeze_epochs` epochs while the new head learns, then trained at
# `backbone_lr_mult` x base_lr. Input normalised with ImageNet's mean/std, as the torchvision weights expect.
# tools/transfer_learn.py (Sony configuration.json) trains this config.
_base_ = ['./mobilenetv2_1.0_digits.py']

imgsz = (96, 96)
max_epochs = 15
base_lr = 0.002
freeze_epochs = max(max_epochs // 6, 1)
backbone_lr_mult = 0.3  # 0.1 measured too timid for digits (far from ImageNet): docs/workflow.md
mean = [123.675, 116.28, 103.53]
std = [58.395, 57.12, 57.375]

custom_hooks = [
    dict(type='FreezeBackboneHook', freeze_epochs=freeze_epochs),
]
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=backbone_lr_mult)}))
