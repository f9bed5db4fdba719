# Multi-object pose at 128x128 for ESP32-S3-class boards (XIAO ESP32S3: the tensor arena in PSRAM): the 192 model
# at 4/9 of its activations and MACs. Same data options as yoloxpose_nano_192.py.
_base_ = ['./yoloxpose_nano_192.py']

imgsz = (128, 128)
