_base_ = ['./fomo_mobnetv2.py']

widen_factor = 1.0
lr = 0.002
