# MobileNetV3-small from mmpretrain, on the same data and schedule as the MobileNetV2 classifier.
_base_ = ['./mobilenetv2_0.35_digits.py']

model = dict(
    backbone=dict(_delete_=True, type='mmpretrain.MobileNetV3', arch='small'),
    head=dict(in_channels=576),
)
