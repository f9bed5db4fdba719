"""What every kind of re-split shares: ratios, stratified group assignment, content hashes, the output folder."""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from sscma.utils.errors import DatasetError

FOLDER_SPLITS = ('training', 'validation', 'test')  # Sony layout
COCO_SPLITS = ('train', 'valid', 'test')  # Roboflow export
YOLO_SPLITS = ('train', 'val', 'test')  # Ultralytics; also the VOC ImageSets names
EMPTY_STRATUM = '(no objects)'


@dataclass
class SplitReport:
    """What :func:`split_dataset` wrote.

    Attributes:
        kind (str): The format read and written (an entry of the format table): ``'folder'``, ``'coco'``,
            ``'yolo'`` or ``'voc'``.
        out (str): The output folder.
        splits (list[str]): Output split folder names, in order.
        rows (list[tuple[str, dict]]): Summary table rows: a label and ``{split: count}``.
        classes (list[str]): Class names (folder, YOLO, VOC), or category names ordered by id without
            Roboflow's placeholder category (COCO).
        num_files (int): Source files (images) placed.
        duplicates (int): Files whose content equals an earlier file (each kept with its twin's split).
        duplicate_groups (int): Sets of identical files.
        conflicting_groups (int): Duplicate sets whose members carry different classes.
        source (str): The layout recognised in the source, with the files that made it so (one line).
    """
    kind: str
    out: str
    splits: List[str]
    rows: List[Tuple[str, Dict[str, int]]] = field(default_factory=list)
    classes: List[str] = field(default_factory=list)
    num_files: int = 0
    duplicates: int = 0
    duplicate_groups: int = 0
    conflicting_groups: int = 0
    source: str = ''

    def read_line(self) -> str:
        """``read <layout found> (<images> images, <n> classes [...])``: what the source was taken for."""
        return f'read {self.source} ({self.num_files} images, {len(self.classes)} classes {self.classes})'

    def table(self) -> str:
        """The per-split, per-class counts as a text table."""
        head = ['', *self.splits, 'total']
        body = [[label, *[str(counts.get(s, 0)) for s in self.splits],
                 str(sum(counts.get(s, 0) for s in self.splits))] for label, counts in self.rows]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

        def fmt(row: List[str]) -> str:
            return '  '.join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])

        return '\n'.join([fmt(head), '  '.join('-' * w for w in widths), *map(fmt, body)])


def file_sha1(path: str, chunk: int = 1 << 20) -> str:
    """sha1 of a file's bytes."""
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def check_ratios(ratios: Sequence[float]) -> Tuple[float, float, float]:
    """Validate ``(train, val[, test])`` fractions: non-negative, training > 0, summing to 1."""
    ratios = [float(r) for r in ratios]
    if len(ratios) == 2:
        ratios.append(0.0)
    if len(ratios) != 3 or any(not np.isfinite(r) or r < 0 for r in ratios) or ratios[0] <= 0:
        raise DatasetError(f'ratios={ratios}: give 2 or 3 non-negative fractions (train val [test]), train > 0')
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise DatasetError(f'ratios={ratios} sum to {sum(ratios):g}, not 1')
    return tuple(ratios)  # type: ignore


def split_targets(n: int, ratios: Sequence[float]) -> List[int]:
    """Split ``n`` items by ``ratios`` with the largest-remainder method (ties favour earlier splits)."""
    exact = [n * r for r in ratios]
    counts = [int(np.floor(e)) for e in exact]
    order = sorted((i for i, r in enumerate(ratios) if r > 0), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:n - sum(counts)]:
        counts[i] += 1
    return counts


def assign_groups(groups: Sequence[Tuple[Hashable, int]], ratios: Sequence[float], seed: int = 0) -> List[int]:
    """Assign each group (``(stratum, size)``) to a split index, stratum by stratum.

    Within a stratum the groups are shuffled, then placed largest first, each into the split furthest below
    its target (the stratum's size split by ``ratios``). With groups of one this hits the targets exactly.
    """
    rng = np.random.default_rng(seed)
    by_stratum: Dict[Hashable, List[int]] = defaultdict(list)
    for i, (stratum, _) in enumerate(groups):
        by_stratum[stratum].append(i)
    result = [-1] * len(groups)
    open_splits = [k for k, r in enumerate(ratios) if r > 0]
    for stratum in sorted(by_stratum, key=str):
        members = by_stratum[stratum]
        members = [members[k] for k in rng.permutation(len(members))]
        members.sort(key=lambda g: -groups[g][1])  # stable: shuffled order among equal sizes
        target = split_targets(sum(groups[g][1] for g in members), ratios)
        filled = [0] * len(ratios)
        for g in members:
            s = max(open_splits, key=lambda k: (target[k] - filled[k], -k))
            result[g] = s
            filled[s] += groups[g][1]
    return result


class SplitOutput:
    """A temporary folder next to ``out`` that becomes ``out`` on :meth:`commit`."""

    def __init__(self, out: str, link: bool = True) -> None:
        out = osp.abspath(out)
        if osp.exists(out) and (not osp.isdir(out) or os.listdir(out)):
            raise DatasetError(f'output {out} already exists and is not empty; choose a new folder '
                               '(nothing is overwritten)')
        os.makedirs(osp.dirname(out), exist_ok=True)
        self.out = out
        self.link = link
        self.tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.', dir=osp.dirname(out))
        self._names: Dict[str, set] = defaultdict(set)

    def place(self, src: str, folder: str, name: Optional[str] = None, unique_stem: bool = False) -> str:
        """Hard-link (or copy) ``src`` into ``folder`` (relative) as ``name`` (default: its own name, renamed
        on a clash of names, or of stems with ``unique_stem``, as a label file beside it needs); return it."""
        if name is None:
            stem, ext = osp.splitext(osp.basename(src))
            key = (lambda n: osp.splitext(n)[0].lower()) if unique_stem else (lambda n: n.lower())
            name, k = stem + ext, 1
            while key(name) in self._names[folder]:
                k += 1
                name = f'{stem}_{k}{ext}'
            self._names[folder].add(key(name))
        dst_dir = osp.join(self.tmp, folder)
        os.makedirs(dst_dir, exist_ok=True)
        dst = osp.join(dst_dir, name)
        try:
            if not self.link:
                raise OSError
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return name

    def write_text(self, rel: str, text: str) -> None:
        path = osp.join(self.tmp, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)

    def write_json(self, rel: str, data: Any) -> None:
        path = osp.join(self.tmp, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=1 if rel.endswith('labels.json') else None)

    def commit(self) -> None:
        if osp.isdir(self.out):
            os.rmdir(self.out)  # empty (checked on creation); fails loudly if something appeared meanwhile
        os.replace(self.tmp, self.out)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def hash_groups(paths: Sequence[str]) -> Tuple[List[List[int]], int]:
    """Group indices of ``paths`` by file content; return the groups and the number of extra copies."""
    by_hash: Dict[str, List[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        by_hash[file_sha1(p)].append(i)
    groups = list(by_hash.values())
    return groups, sum(len(g) - 1 for g in groups)


def majority(values: Sequence[Hashable]) -> Hashable:
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], str(v)))
