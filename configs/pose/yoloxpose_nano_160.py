# Multi-object pose at 160x160 for ESP32-S3-class boards (XIAO ESP32S3, the tensor arena in PSRAM): the 192 model
# at about 70 % of its activations and MACs. Same data options as yoloxpose_nano_192.py.
_base_ = ['./yoloxpose_nano_192.py']

imgsz = (160, 160)
