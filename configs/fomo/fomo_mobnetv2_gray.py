# Single-channel input for grayscale sensors: images are loaded as grayscale, the stem takes 1 channel.
_base_ = ['./fomo_mobnetv2.py']

in_channels = 1
color_type = 'grayscale'
