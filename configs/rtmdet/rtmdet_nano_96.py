# RTMDet-nano at the bundled dataset's native 96x96: a quarter of the 192 config's compute, for CPU training.
_base_ = ['./rtmdet_nano_192.py']

imgsz = (96, 96)
epochs = 30
