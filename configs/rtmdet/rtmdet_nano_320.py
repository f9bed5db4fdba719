_base_ = ['./rtmdet_nano_192.py']

imgsz = (320, 320)
batch = 8
