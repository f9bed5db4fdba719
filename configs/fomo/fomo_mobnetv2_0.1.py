_base_ = ['./fomo_mobnetv2.py']

widen_factor = 0.1
