"""The same detection scenes written as a Roboflow COCO export, a YOLO export (Ultralytics or Roboflow layout)
or Pascal VOC (VOC2007 with ImageSets, or labelImg split folders), in the shapes these tools write.

A scene's objects are placed in relative coordinates and rounded to whole pixels once per image size, so
every format describes the very same pixel boxes: COCO as ``[x, y, w, h]``, YOLO normalised by the image
size, VOC 1-based (``xmin = x0 + 1``, which mmdet's ``int(float(text)) - 1`` undoes).
"""
import json
import os
import os.path as osp
import zlib
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

CLASSES = ('block', 'disc', 'ring')  # already sorted: VOC without labels.txt sorts the names
SIZES = ((128, 128), (160, 120), (320, 240), (64, 48))  # none is the 96x96 network input; most not square
YOLO_SPLITS = {'train': 'train', 'valid': 'val', 'test': 'test'}
VOC_SPLITS = {'train': 'train', 'valid': 'val', 'test': 'test'}
FORMATS = ('coco', 'yolo', 'yolo_dict', 'yolo_roboflow', 'voc', 'labelimg')

Box = Tuple[int, int, int, int]


def make_scenes(counts: Dict[str, int], sizes: Sequence[Tuple[int, int]] = SIZES,
                seed: int = 0) -> Dict[str, List[Dict]]:
    """``{split: [dict(name, size, gray, objects=[(label, (x0, y0, x1, y1) pixels)])]}``.

    Every 4th image is background; every 3rd has an object touching the left or bottom border; every 5th
    is a grayscale JPEG.
    """
    rng = np.random.default_rng(seed)
    scenes, k = {}, 0
    for split, n in counts.items():
        scenes[split] = []
        for i in range(n):
            w, h = sizes[k % len(sizes)]
            objects = []
            if i % 4 != 3:
                for j in range(1 + i % 3):
                    rw, rh = rng.uniform(0.15, 0.3, 2)
                    rx, ry = rng.uniform(0.0, 1.0 - rw), rng.uniform(0.0, 1.0 - rh)
                    if j == 0 and i % 3 == 0:
                        rx = 0.0  # touches the left border
                    if j == 1 and i % 3 == 1:
                        ry = 1.0 - rh  # touches the bottom border
                    box = (int(round(rx * w)), int(round(ry * h)), int(round((rx + rw) * w)),
                           int(round((ry + rh) * h)))
                    objects.append(((i + j) % len(CLASSES), box))
            scenes[split].append(dict(name=f'{split}_{i:03d}', size=(w, h), gray=k % 5 == 2, objects=objects))
            k += 1
    return scenes


def draw(scene: Dict, seed: int = 0) -> np.ndarray:
    w, h = scene['size']
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    colours = ((0, 0, 255), (0, 255, 0), (255, 0, 0))
    for label, (x0, y0, x1, y1) in scene['objects']:
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colours[label], -1)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if scene['gray'] else img


def _write_image(path: str, scene: Dict, seed: int) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, draw(scene, zlib.crc32(scene['name'].encode())))  # distinct noise: no accidental twins


def _coco(root: str, scenes: Dict) -> None:
    for split, items in scenes.items():
        images, anns = [], []
        for i, sc in enumerate(items):
            _write_image(osp.join(root, split, sc['name'] + '.jpg'), sc, i)
            images.append(dict(id=i, license=1, file_name=sc['name'] + '.jpg', height=sc['size'][1],
                               width=sc['size'][0], date_captured='2024-01-01T00:00:00+00:00'))
            for label, (x0, y0, x1, y1) in sc['objects']:
                anns.append(dict(id=len(anns), image_id=i, category_id=label + 1,
                                 bbox=[x0, y0, x1 - x0, y1 - y0], area=(x1 - x0) * (y1 - y0), segmentation=[],
                                 iscrowd=0))
        cats = [dict(id=0, name='shapes', supercategory='none')] + [
            dict(id=k + 1, name=n, supercategory='shapes') for k, n in enumerate(CLASSES)]
        with open(osp.join(root, split, '_annotations.coco.json'), 'w') as f:
            json.dump(dict(info=dict(description='shapes'), licenses=[], categories=cats, images=images,
                           annotations=anns), f)


def _yolo_lines(sc: Dict) -> str:
    w, h = sc['size']
    return ''.join(f'{label} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} '
                   f'{(y1 - y0) / h:.6f}\n' for label, (x0, y0, x1, y1) in sc['objects'])


def _yolo(root: str, scenes: Dict, names_as: str = 'list', roboflow: bool = False) -> None:
    import yaml
    for split, items in scenes.items():
        for i, sc in enumerate(items):
            if roboflow:
                img_dir, lbl_dir = osp.join(root, split, 'images'), osp.join(root, split, 'labels')
            else:
                img_dir = osp.join(root, 'images', YOLO_SPLITS[split])
                lbl_dir = osp.join(root, 'labels', YOLO_SPLITS[split])
            _write_image(osp.join(img_dir, sc['name'] + '.jpg'), sc, i)
            os.makedirs(lbl_dir, exist_ok=True)
            if sc['objects'] or i % 8 == 3:  # one background image gets an empty file, the others none
                with open(osp.join(lbl_dir, sc['name'] + '.txt'), 'w') as f:
                    f.write(_yolo_lines(sc))
    if roboflow:  # Roboflow's YOLOv8 export, `../` paths included
        data = {YOLO_SPLITS[s]: f'../{s}/images' for s in scenes}
        data.update(nc=len(CLASSES), names=list(CLASSES), roboflow=dict(workspace='w', project='shapes', version=1))
    else:  # Ultralytics
        data = dict(path='.', **{YOLO_SPLITS[s]: f'images/{YOLO_SPLITS[s]}' for s in scenes})
        data['names'] = dict(enumerate(CLASSES)) if names_as == 'dict' else list(CLASSES)
    with open(osp.join(root, 'data.yaml'), 'w') as f:
        yaml.safe_dump(data, f, sort_keys=False)


def voc_xml(sc: Dict, folder: str, path: str = '', difficult: Sequence[int] = ()) -> str:
    """An annotation the way labelImg / VOC2007 write it (1-based corners)."""
    w, h = sc['size']
    objects = ''.join(
        f'\t<object>\n\t\t<name>{CLASSES[label]}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n'
        f'\t\t<difficult>{int(k in difficult)}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x0 + 1}</xmin>\n'
        f'\t\t\t<ymin>{y0 + 1}</ymin>\n\t\t\t<xmax>{x1 + 1}</xmax>\n\t\t\t<ymax>{y1 + 1}</ymax>\n\t\t</bndbox>\n'
        f'\t</object>\n' for k, (label, (x0, y0, x1, y1)) in enumerate(sc['objects']))
    return (f'<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{sc["name"]}.jpg</filename>\n'
            f'\t<path>{path or "C:/Users/me/" + sc["name"] + ".jpg"}</path>\n'
            f'\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n'
            f'\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>{1 if sc["gray"] else 3}'
            f'</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objects}</annotation>\n')


def _voc(root: str, scenes: Dict) -> None:
    base = osp.join(root, 'VOCdevkit', 'VOC2007')
    for d in ('Annotations', 'JPEGImages', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(base, d), exist_ok=True)
    for split, items in scenes.items():
        for i, sc in enumerate(items):
            _write_image(osp.join(base, 'JPEGImages', sc['name'] + '.jpg'), sc, i)
            with open(osp.join(base, 'Annotations', sc['name'] + '.xml'), 'w') as f:
                f.write(voc_xml(sc, 'VOC2007'))
        with open(osp.join(base, 'ImageSets', 'Main', VOC_SPLITS[split] + '.txt'), 'w') as f:
            f.write(''.join(sc['name'] + '\n' for sc in items))


def _labelimg(root: str, scenes: Dict) -> None:
    for split, items in scenes.items():
        for i, sc in enumerate(items):
            _write_image(osp.join(root, split, sc['name'] + '.jpg'), sc, i)
            with open(osp.join(root, split, sc['name'] + '.xml'), 'w') as f:
                f.write(voc_xml(sc, split, path=osp.join('/home/me/labels', split, sc['name'] + '.jpg')))


def write_detection_scenes(root, fmt: str, counts: Dict[str, int] = None,
                           sizes: Sequence[Tuple[int, int]] = SIZES, seed: int = 0) -> Dict[str, List[Dict]]:
    """Write :func:`make_scenes` under ``root`` in ``fmt`` (one of :data:`FORMATS`); return the scenes."""
    root = str(root)
    scenes = make_scenes(counts or dict(train=8, valid=4, test=4), sizes, seed)
    os.makedirs(root, exist_ok=True)
    if fmt == 'coco':
        _coco(root, scenes)
    elif fmt in ('yolo', 'yolo_dict', 'yolo_roboflow'):
        _yolo(root, scenes, names_as='dict' if fmt == 'yolo_dict' else 'list', roboflow=fmt == 'yolo_roboflow')
    elif fmt == 'voc':
        _voc(root, scenes)
    elif fmt == 'labelimg':
        _labelimg(root, scenes)
    else:
        raise ValueError(fmt)
    return scenes


# ------------------------------------------------------------------------------ annotation-tool exports
# One set of scenes written the way CVAT and labelImg export a task: whole (no train/valid/test splits), with the
# tool's own class order (not sorted) and file shapes. Sizes: none square, none the 96x96 network input.
EXPORT_TOOLS = ('cvat_coco', 'cvat_yolo', 'cvat_voc', 'labelimg_yolo', 'labelimg_voc')
EXPORT_CLASSES = ('ring', 'block', 'disc')  # the order the classes were created in the tool
EXPORT_SIZES = ((160, 120), (120, 200), (320, 240), (75, 50))


def _cvat_coco(root: str, items: List[Dict], classes: Sequence[str], image_dir: str) -> None:
    """CVAT "COCO 1.0": ``annotations/instances_default.json`` + the images in ``image_dir`` (``images`` or
    ``images/default``), ids from 1, ``attributes`` on every annotation."""
    images, anns = [], []
    for i, sc in enumerate(items):
        _write_image(osp.join(root, image_dir, sc['name'] + '.jpg'), sc, i)
        images.append(dict(id=i + 1, width=sc['size'][0], height=sc['size'][1], file_name=sc['name'] + '.jpg',
                           license=0, flickr_url='', coco_url='', date_captured=0))
        for label, (x0, y0, x1, y1) in sc['objects']:
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=classes.index(CLASSES[label]) + 1,
                             segmentation=[], area=float((x1 - x0) * (y1 - y0)),
                             bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)], iscrowd=0,
                             attributes=dict(occluded=False, rotation=0.0)))
    data = dict(licenses=[dict(name='', id=0, url='')],
                info=dict(contributor='', date_created='', description='', url='', version='', year=''),
                categories=[dict(id=k + 1, name=n, supercategory='') for k, n in enumerate(classes)],
                images=images, annotations=anns)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    with open(osp.join(root, 'annotations', 'instances_default.json'), 'w') as f:
        json.dump(data, f)


def _yolo_lines_in(sc: Dict, classes: Sequence[str]) -> str:
    """YOLO label lines with the class ids of ``classes``' order."""
    w, h = sc['size']
    return ''.join(f'{classes.index(CLASSES[label])} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} '
                   f'{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}\n' for label, (x0, y0, x1, y1) in sc['objects'])


def _cvat_yolo(root: str, items: List[Dict], classes: Sequence[str]) -> None:
    """CVAT "YOLO 1.1" (darknet, written by datumaro): paths in ``obj.data`` and ``train.txt`` start with
    darknet's ``data/``; every image has a label file beside it, empty for a background image."""
    for i, sc in enumerate(items):
        _write_image(osp.join(root, 'obj_train_data', sc['name'] + '.jpg'), sc, i)
        with open(osp.join(root, 'obj_train_data', sc['name'] + '.txt'), 'w') as f:
            f.write(_yolo_lines_in(sc, classes))
    with open(osp.join(root, 'obj.names'), 'w') as f:
        f.write(''.join(f'{n}\n' for n in classes))
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write(''.join(f'data/obj_train_data/{sc["name"]}.jpg\n' for sc in items))
    with open(osp.join(root, 'obj.data'), 'w') as f:
        f.write(f'classes = {len(classes)}\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n')


def _datumaro_voc_xml(sc: Dict) -> str:
    """An annotation as datumaro (CVAT "Pascal VOC 1.1") writes it: 0-based float corners, empty ``depth``."""
    w, h = sc['size']
    objects = ''.join(
        f'  <object>\n    <name>{CLASSES[label]}</name>\n    <truncated>0</truncated>\n    <occluded>0</occluded>\n'
        f'    <difficult>0</difficult>\n    <bndbox>\n      <xmin>{float(x0)}</xmin>\n      <ymin>{float(y0)}</ymin>\n'
        f'      <xmax>{float(x1)}</xmax>\n      <ymax>{float(y1)}</ymax>\n    </bndbox>\n    <attributes>\n'
        f'      <attribute>\n        <name>rotation</name>\n        <value>0.0</value>\n      </attribute>\n'
        f'    </attributes>\n  </object>\n' for label, (x0, y0, x1, y1) in sc['objects'])
    return (f'<annotation>\n  <folder></folder>\n  <filename>{sc["name"]}.jpg</filename>\n  <source>\n'
            f'    <database>Unknown</database>\n    <annotation>Unknown</annotation>\n    <image>Unknown</image>\n'
            f'  </source>\n  <size>\n    <width>{w}</width>\n    <height>{h}</height>\n    <depth></depth>\n'
            f'  </size>\n  <segmented>0</segmented>\n{objects}</annotation>\n')


def _cvat_voc(root: str, items: List[Dict], classes: Sequence[str]) -> None:
    """CVAT "Pascal VOC 1.1": ``Annotations/``, ``JPEGImages/``, ``ImageSets/{Main,Action,Layout,Segmentation}/
    default.txt`` (with ``Main/<class>_default.txt`` lists), empty segmentation folders and a ``labelmap.txt``
    whose first entry is VOC's ``background``."""
    for d in ('Annotations', 'JPEGImages', 'SegmentationClass', 'SegmentationObject'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    for i, sc in enumerate(items):
        _write_image(osp.join(root, 'JPEGImages', sc['name'] + '.jpg'), sc, i)
        with open(osp.join(root, 'Annotations', sc['name'] + '.xml'), 'w') as f:
            f.write(_datumaro_voc_xml(sc))
    ids = ''.join(sc['name'] + '\n' for sc in items)
    for task in ('Main', 'Action', 'Layout', 'Segmentation'):
        os.makedirs(osp.join(root, 'ImageSets', task), exist_ok=True)
        with open(osp.join(root, 'ImageSets', task, 'default.txt'), 'w') as f:
            f.write(ids)
    for name in classes:
        with open(osp.join(root, 'ImageSets', 'Main', f'{name}_default.txt'), 'w') as f:
            f.write(''.join(f'{sc["name"]} {1 if any(CLASSES[o[0]] == name for o in sc["objects"]) else -1}\n'
                            for sc in items))
    colours = ('250,50,83', '51,221,255', '131,224,112')
    with open(osp.join(root, 'labelmap.txt'), 'w') as f:
        f.write('# label:color_rgb:parts:actions\nbackground:0,0,0::\n')
        f.write(''.join(f'{n}:{colours[k % 3]}::\n' for k, n in enumerate(classes)))


def _labelimg_yolo(root: str, items: List[Dict], classes: Sequence[str]) -> None:
    """labelImg in YOLO mode: images, a ``.txt`` per saved (annotated) image and ``classes.txt`` in one folder."""
    for i, sc in enumerate(items):
        _write_image(osp.join(root, sc['name'] + '.jpg'), sc, i)
        if sc['objects']:
            with open(osp.join(root, sc['name'] + '.txt'), 'w') as f:
                f.write(_yolo_lines_in(sc, classes))
    with open(osp.join(root, 'classes.txt'), 'w') as f:
        f.write(''.join(f'{n}\n' for n in classes))


def _labelimg_voc(root: str, items: List[Dict]) -> None:
    """labelImg in Pascal VOC mode: each image's xml (1-based corners) beside it, in one folder."""
    for i, sc in enumerate(items):
        _write_image(osp.join(root, sc['name'] + '.jpg'), sc, i)
        with open(osp.join(root, sc['name'] + '.xml'), 'w') as f:
            f.write(voc_xml(sc, osp.basename(root), path=osp.join('/home/me/pictures', sc['name'] + '.jpg')))


def write_tool_export(root, tool: str, n: int = 24, sizes: Sequence[Tuple[int, int]] = EXPORT_SIZES,
                      classes: Sequence[str] = EXPORT_CLASSES, seed: int = 0) -> List[Dict]:
    """Write ``n`` scenes under ``root`` as ``tool`` (one of :data:`EXPORT_TOOLS`, or ``'cvat_coco_nested'`` for
    a CVAT COCO export with ``images/default/``) exports a task; return the scenes (objects as
    ``(index in CLASSES, pixel box)``)."""
    root = str(root)
    items = make_scenes(dict(frame=n), sizes, seed)['frame']
    os.makedirs(root, exist_ok=True)
    if tool in ('cvat_coco', 'cvat_coco_nested'):
        _cvat_coco(root, items, classes, osp.join('images', 'default') if tool.endswith('nested') else 'images')
    elif tool == 'cvat_yolo':
        _cvat_yolo(root, items, classes)
    elif tool == 'cvat_voc':
        _cvat_voc(root, items, classes)
    elif tool == 'labelimg_yolo':
        _labelimg_yolo(root, items, classes)
    elif tool == 'labelimg_voc':
        _labelimg_voc(root, items)
    else:
        raise ValueError(tool)
    return items
