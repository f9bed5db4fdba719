# lraspp_mobnetv2_96 at a 160x120 input (4:3, 2.1x the pixels): finer outlines for boards with the memory
# (docs/segmentation.md has the measured arena).
_base_ = ['./lraspp_mobnetv2_96.py']

imgsz = (160, 120)
