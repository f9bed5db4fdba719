# FOMO for MCUs with ~128 KB of SRAM: the default FOMO's int8 TFLite Micro arena is set by stage 1 of the
# backbone (its 6x expansion of the 48x48 map); a 4x expansion there shrinks it from 151,168 to 104,576 bytes
# at 96x96. Measured (docs/fomo.md): arena and F1 vs fomo_mobnetv2.py.
_base_ = ['./fomo_mobnetv2.py']

# the distilled ImageNet weights fit only the stem and block 1 of this shape: random start (as docs/fomo.md measures)
init = 'scratch'

model = dict(backbone=dict(expand_ratios=(1, 4)))
