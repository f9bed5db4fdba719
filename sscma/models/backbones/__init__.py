from .mobilenet_v2 import MobileNetV2

__all__ = ['MobileNetV2']
