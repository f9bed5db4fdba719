"""Shared fixtures: small on-disk datasets in the layouts users bring."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from sscma.utils import register_all_modules

register_all_modules()


def write_class_folders(root, classes, per_class=6, splits=('training', 'validation', 'test'), size=32,
                        labels=None, ext='.png'):
    """Class folders with distinguishable images (class i: bright square at a class-specific place)."""
    rng = np.random.default_rng(0)
    for split in splits:
        for ci, name in enumerate(classes):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for k in range(per_class):
                img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                x = (ci * 7) % (size - 8)
                img[4:12, x:x + 8] = 255
                cv2.imwrite(osp.join(folder, f'{name}_{k}{ext}'), img)
    if labels is not None:
        with open(osp.join(root, 'labels.json'), 'w') as f:
            json.dump(labels, f)
    return str(root)


def write_roboflow_coco(root, n_images=(8, 4, 4), size=(112, 84), category_ids=(7, 3), seed=0):
    """A Roboflow-style COCO export with odd category ids, empty images and border-crossing boxes.

    ``size`` is ``(width, height)`` (or one int for square files); the default is non-square and not a
    network input size, so every test that uses it sees resized, squeezed images.
    """
    rng = np.random.default_rng(seed)
    w, h = (size, size) if isinstance(size, int) else size
    names = ['disc', 'block']
    for split, n in zip(('train', 'valid', 'test'), n_images):
        folder = osp.join(root, split)
        os.makedirs(folder, exist_ok=True)
        images, anns = [], []
        for i in range(n):
            img = rng.integers(0, 50, (h, w, 3), dtype=np.uint8)
            if i % 4 != 3:  # every 4th image has no object
                for k in range(2):
                    cls = (i + k) % 2
                    cx, cy = rng.integers(12, w - 12), rng.integers(12, h - 12)
                    if i % 4 == 1 and k == 0:
                        cx = w - 4  # crosses the right border
                    r = 7
                    if cls == 0:
                        cv2.circle(img, (int(cx), int(cy)), r, (0, 0, 255), -1)
                    else:
                        cv2.rectangle(img, (int(cx - r), int(cy - r)), (int(cx + r), int(cy + r)), (0, 255, 0), -1)
                    x0, y0 = max(cx - r, 0), max(cy - r, 0)
                    x1, y1 = min(cx + r, w), min(cy + r, h)
                    anns.append(dict(id=len(anns) + 1, image_id=i, category_id=int(category_ids[cls]),
                                     bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                                     area=float((x1 - x0) * (y1 - y0)), iscrowd=0, segmentation=[]))
            fname = f'img_{i:03d}.jpg'
            cv2.imwrite(osp.join(folder, fname), img)
            images.append(dict(id=i, file_name=fname, width=w, height=h))
        cats = [dict(id=0, name='things', supercategory='none')] + [
            dict(id=int(c), name=n, supercategory='things') for c, n in zip(category_ids, names)]
        with open(osp.join(folder, '_annotations.coco.json'), 'w') as f:
            json.dump(dict(info={}, licenses=[], categories=cats, images=images, annotations=anns), f)
    return str(root)


@pytest.fixture(scope='session')
def roboflow_root(tmp_path_factory):
    return write_roboflow_coco(tmp_path_factory.mktemp('roboflow'))


@pytest.fixture(scope='session')
def folder_root(tmp_path_factory):
    classes = ['cat', 'dog', 'fox']
    return write_class_folders(tmp_path_factory.mktemp('folders'), classes,
                               labels={'dog': 0, 'cat': 1, 'fox': 2})
