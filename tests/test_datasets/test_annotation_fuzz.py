"""Seeded fuzzing of the annotation readers: COCO json, YOLO txt + data.yaml, VOC xml and labels.json.

Each trial changes one thing in a valid export (a value where an id, size, box, name, file name or category
belongs becomes a list, dict, None, NaN, bool, text, a negative or huge number, a path leaving the dataset;
a key or element is deleted; the file is truncated or replaced by bytes) and reads it again. Every trial must
end in an :class:`SSCMAError` with a one-line message, or load a dataset whose records are sound (positive
image sizes, finite boxes with x1 > x0 and y1 > y0, labels in range). Loading is the documented answer when
the changed value is one the readers do not use (COCO ``area``, ``segmentation``, ``license``; VOC ``pose``,
``truncated``, ``path``, ``depth``; an ``iscrowd``/``ignore`` flag read as true or false), or one they
accept (a truncated label line that is still 5 numbers, a class id written ``1.0``, a value clipped from
within 0.01 of the image border). Any other exception is a failure.
"""
import copy
import json
import math
import random
import traceback
import xml.etree.ElementTree as ET
from collections import Counter

import yaml

from sscma.datasets import DetectionDataset, read_labels_json
from sscma.utils.errors import SSCMAError

from ..detection_data import write_detection_scenes

TRIALS = 80
JUNK = [[], [1, 2], {}, {'a': 1}, None, float('nan'), float('inf'), True, False, 'text', '', -3, -1e9, 10**30,
        1e308, 0, 2.5, '../../outside.jpg', '/etc/passwd']
JUNK_TEXT = ['', ' ', 'nan', 'inf', '-inf', '-5', '1e308', '1e9', 'abc', '[1]', '0', '3.5', '0x10', '1,5', 'None',
             'True', '\u00e9t\u00e9', '../../outside', '-0']


def _sound(ds):
    n = len(ds.metainfo['classes'])
    for d in ds:
        assert isinstance(d['width'], (int, float)) and d['width'] > 0 and d['height'] > 0, d
        for inst in d['instances']:
            x0, y0, x1, y1 = inst['bbox']
            assert all(math.isfinite(v) for v in inst['bbox']) and x1 > x0 and y1 > y0, inst
            assert 0 <= inst['bbox_label'] < n and inst['ignore_flag'] in (0, 1), inst


def _trial(read, name, k, failures, counts):
    try:
        result = read()
    except SSCMAError as e:
        assert '\n' not in str(e), f'{name} trial {k}: message has several lines: {e}'
        counts['error'] += 1
        return
    except Exception:  # noqa: BLE001 - what we are looking for
        failures.append(f'{name} trial {k}: {traceback.format_exc(limit=-3)}')
        return
    if isinstance(result, DetectionDataset):
        _sound(result)
    counts['loaded'] += 1


def _paths(obj, prefix=()):
    """Every (container, key) inside ``obj``."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, value in items:
        yield obj, key
        yield from _paths(value, prefix + (key, ))


def _mutate_json(data, text, rng):
    """A new json text with one change in ``data`` (or ``text`` truncated)."""
    op = rng.random()
    if op < 0.1:
        return text[:rng.randrange(len(text))]
    data = copy.deepcopy(data)
    if op < 0.15:
        return json.dumps(rng.choice(JUNK))
    section = rng.choice([k for k in ('images', 'annotations', 'categories') if k in data] or [None])
    pool = list(_paths(data[section])) if section and data[section] else [(data, section)]
    pool = [p for p in pool if not isinstance(p[0], list) or p[0] is not data.get(section) or rng.random() < 0.1]
    container, key = rng.choice(pool)
    if rng.random() < 0.2 and isinstance(container, dict):
        del container[key]
    else:
        container[key] = copy.deepcopy(rng.choice(JUNK))
    return json.dumps(data)


def test_coco_json(tmp_path):
    root = tmp_path / 'coco'
    write_detection_scenes(root, 'coco', dict(train=5, valid=1, test=1))
    ann = root / 'train' / '_annotations.coco.json'
    text = ann.read_text()
    data = json.loads(text)
    rng, failures, counts = random.Random(0), [], Counter()
    for k in range(TRIALS):
        ann.write_text(_mutate_json(data, text, rng))
        _trial(lambda: DetectionDataset(data_root=str(root), split='train'), 'coco', k, failures, counts)
    assert not failures, '\n'.join(failures)
    assert counts['error'] > TRIALS // 2 and sum(counts.values()) == TRIALS


def test_labels_json(tmp_path):
    path = tmp_path / 'labels.json'
    good = {'daisy': 0, 'dandelion': 1, 'rose': 2}
    text = json.dumps(good)
    rng, failures, counts = random.Random(1), [], Counter()
    for k in range(TRIALS):
        op = rng.random()
        mapping = dict(good)
        if op < 0.15:
            out = text[:rng.randrange(len(text))]
        elif op < 0.3:
            out = json.dumps(rng.choice(JUNK))
        elif op < 0.4:
            mapping[rng.choice(['', ' ', 'x'])] = rng.choice([3, 0, 'a'])
            out = json.dumps(mapping)
        elif op < 0.5:
            del mapping[rng.choice(list(mapping))]
            out = json.dumps(mapping)
        else:
            mapping[rng.choice(list(mapping))] = rng.choice(JUNK)
            out = json.dumps(mapping)
        path.write_text(out)
        _trial(lambda: read_labels_json(str(path)), 'labels.json', k, failures, counts)
    path.write_bytes(b'{"\xff": 0}')
    _trial(lambda: read_labels_json(str(path)), 'labels.json', TRIALS, failures, counts)
    assert not failures, '\n'.join(failures)


def _mutate_label(text, rng):
    lines = text.splitlines() or ['0 0.5 0.5 0.2 0.2']
    op = rng.random()
    if op < 0.1:
        return text[:rng.randrange(len(text) + 1)]
    if op < 0.15:
        return bytes(rng.randrange(256) for _ in range(20))
    k = rng.randrange(len(lines))
    tokens = lines[k].split()
    if op < 0.7:
        tokens[rng.randrange(len(tokens))] = rng.choice(JUNK_TEXT)
    elif op < 0.8:
        del tokens[rng.randrange(len(tokens))]
    elif op < 0.9:
        tokens.append(rng.choice(JUNK_TEXT + ['0.5']))
    else:
        tokens = [str(rng.choice([-1, 2, 3, 0.5, 99])), *tokens[1:]]
    lines[k] = ' '.join(tokens)
    return '\n'.join(lines) + '\n'


def _mutate_yaml(data, text, rng):
    op = rng.random()
    if op < 0.1:
        return text[:rng.randrange(len(text))]
    if op < 0.15:
        return text + "x: !!python/object/apply:os.system ['true']\n"
    data = copy.deepcopy(data)
    key = rng.choice(['names', 'names', 'nc', 'train', 'val', 'path', 'test'])
    if rng.random() < 0.2:
        data.pop(key, None)
    elif key == 'names' and rng.random() < 0.5:
        names = data['names']
        names[rng.randrange(len(names))] = rng.choice(JUNK)
    else:
        data[key] = copy.deepcopy(rng.choice(JUNK))
    return yaml.safe_dump(data)


def test_yolo_txt_and_yaml(tmp_path):
    root = tmp_path / 'yolo'
    write_detection_scenes(root, 'yolo', dict(train=5, valid=1))
    labels = sorted((root / 'labels' / 'train').iterdir())
    originals = {p: p.read_bytes() for p in labels}
    yaml_path = root / 'data.yaml'
    yaml_text = yaml_path.read_text()
    data = yaml.safe_load(yaml_text)
    rng, failures, counts = random.Random(2), [], Counter()
    for k in range(TRIALS):
        for p, raw in originals.items():
            p.write_bytes(raw)
        yaml_path.write_text(yaml_text)
        if k % 2:
            target = rng.choice([p for p in labels if originals[p]])
            out = _mutate_label(originals[target].decode(), rng)
            target.write_bytes(out if isinstance(out, bytes) else out.encode())
        else:
            yaml_path.write_text(_mutate_yaml(data, yaml_text, rng))
        _trial(lambda: DetectionDataset(data_root=str(root), split='train'), 'yolo', k, failures, counts)
    assert not failures, '\n'.join(failures)
    assert counts['error'] > TRIALS // 3 and sum(counts.values()) == TRIALS


VOC_TAGS = ('filename', 'size', 'width', 'height', 'object', 'name', 'difficult', 'bndbox', 'xmin', 'ymin', 'xmax',
            'ymax')


def _mutate_xml(raw, rng):
    op = rng.random()
    if op < 0.1:
        return raw[:rng.randrange(len(raw))]
    if op < 0.15:
        return b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY b "c">]>\n' + raw
    if op < 0.2:
        return bytes(rng.randrange(256) for _ in range(40))
    root = ET.fromstring(raw)
    parents = {c: p for p in root.iter() for c in p}
    nodes = [n for n in root.iter() if n.tag in VOC_TAGS]
    node = rng.choice(nodes)
    if rng.random() < 0.25:
        parents[node].remove(node)
    elif len(node):  # a container (size, object, bndbox): replace its content by text
        for c in list(node):
            node.remove(c)
        node.text = rng.choice(JUNK_TEXT)
    else:
        node.text = rng.choice(JUNK_TEXT)
    return ET.tostring(root)


def test_voc_xml(tmp_path):
    root = tmp_path / 'voc'
    write_detection_scenes(root, 'labelimg', dict(train=5, valid=1))
    xmls = sorted((root / 'train').glob('*.xml'))
    originals = {p: p.read_bytes() for p in xmls}
    rng, failures, counts = random.Random(3), [], Counter()
    for k in range(TRIALS):
        for p, raw in originals.items():
            p.write_bytes(raw)
        target = rng.choice([p for p in xmls if b'<object>' in originals[p]])
        target.write_bytes(_mutate_xml(originals[target], rng))
        _trial(lambda: DetectionDataset(data_root=str(root), split='train'), 'voc', k, failures, counts)
    assert not failures, '\n'.join(failures)
    assert counts['error'] > TRIALS // 3 and sum(counts.values()) == TRIALS

