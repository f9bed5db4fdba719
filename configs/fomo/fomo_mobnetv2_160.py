_base_ = ['./fomo_mobnetv2.py']

imgsz = (160, 160)
