# The 112 config at 192x192 input (more pixels per degree of needle: finer readings, ~3x the compute).
_base_ = ['./pfld_mobilenetv2_meter_112.py']

imgsz = (192, 192)
