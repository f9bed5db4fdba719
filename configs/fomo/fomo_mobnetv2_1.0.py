_base_ = ['./fomo_mobnetv2.py']

widen_factor = 1.0
base_lr = 0.002
init = 'scratch'  # torchvision's ImageNet weights (init='imagenet') are not measured for FOMO at this width
