_base_ = ['./mobilenetv2_0.35_digits.py']

widen_factor = 1.0
base_lr = 0.002
