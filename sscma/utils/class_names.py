"""Class identity between a model and a dataset: labels are matched by name, never by position.

A model predicts class *indices*; a dataset numbers its classes in the order its export layout gives (YOLO
``names``, COCO category ids, VOC ``labels.txt`` or the sorted object names, class folders ...). The same
names in another order, scored by index, give a wrong number without a word. Every dataset that takes
``model_classes`` numbers its labels in the model's order through :func:`match_classes`.

``class_match`` (a top-level config variable, ``--cfg-options class_match=shared``) says what to do when the
names differ: ``'name'`` (default) refuses, ``'shared'`` scores the classes both have, leaving out objects of
classes the model does not know and ignoring predictions of classes the dataset does not label.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .errors import ConfigError, DatasetError

CLASS_MATCH_MODES = ('name', 'shared', 'transfer')


@dataclass
class ClassMatch:
    """How a dataset's classes map onto a model's.

    Attributes:
        classes (list[str]): The class order labels are numbered in (the model's, when it has names).
        index (dict): Dataset class name -> label id; a dataset class missing here is left out.
        dropped (list[str]): Dataset classes the model does not know (``class_match='shared'``).
        unlabelled (list[str]): Model classes the dataset does not label (``class_match='shared'``): their
            predictions cannot be judged and metrics ignore them.
    """
    classes: List[str]
    index: Dict[str, int]
    dropped: List[str] = field(default_factory=list)
    unlabelled: List[str] = field(default_factory=list)

    def check_num_classes(self, num_classes: Optional[int], dataset_classes: Sequence[str], source: str) -> None:
        """Raise :class:`DatasetError` when the config's ``num_classes`` is not the number of classes labels are
        numbered in (the dataset's, or the model's when they were matched to it)."""
        if num_classes is None or num_classes == len(self.classes):
            return
        if list(self.classes) == list(dataset_classes):
            raise DatasetError(f'num_classes={num_classes} but {source} defines {len(self.classes)} classes: '
                               f'{list(self.classes)}')
        raise DatasetError(f'num_classes={num_classes} but the model has {len(self.classes)} classes: {self.classes}')

    def metainfo(self) -> Dict:
        """What goes into a dataset's ``metainfo``: ``classes`` and, when some exist, ``unlabelled_classes``."""
        meta: Dict = dict(classes=tuple(self.classes))
        if self.unlabelled:
            meta['unlabelled_classes'] = tuple(self.unlabelled)
        return meta


def _names(names: Sequence) -> str:
    return '[' + ', '.join(str(n) for n in names) + ']'


def check_class_match(mode: str, allowed: Sequence[str] = CLASS_MATCH_MODES) -> str:
    """``mode`` if it is one of ``allowed``, else a :class:`ConfigError` saying what each choice means."""
    if mode not in allowed:
        raise ConfigError(f'class_match={mode!r}: expected "name" (the model and the dataset must have the same '
                          'class names, in any order) or "shared" (score the classes both have)')
    return mode


def match_classes(model_classes: Optional[Sequence[str]], dataset_classes: Sequence[str], source: str,
                  mode: str = 'name', logger=None) -> ClassMatch:
    """Number ``dataset_classes`` in the order of ``model_classes``, matching them by name.

    Args:
        model_classes (Sequence[str], optional): The model's class names in its output order; ``None`` (a
            model without names) keeps the dataset's order.
        dataset_classes (Sequence[str]): The dataset's class names in its own order.
        source (str): Where the dataset's names come from, for the messages.
        mode (str): ``'name'``: the two sets must be equal; ``'shared'``: score the classes both have;
            ``'transfer'`` (training from other weights): different names keep the dataset's order.
        logger: Where the one line about a remapping goes (default: mmengine's current logger).

    Raises:
        DatasetError: the names differ (``'name'``), or nothing is shared (``'shared'``).
    """
    check_class_match(mode)
    dataset = [str(c) for c in dataset_classes]
    identity = ClassMatch(dataset, {c: i for i, c in enumerate(dataset)})
    if not model_classes:
        return identity
    model = [str(c) for c in model_classes]
    if model == dataset:
        return identity
    if logger is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
    index = {c: i for i, c in enumerate(model)}
    if set(model) == set(dataset):
        logger.info(f'classes mapped by name: model {_names(model)} vs dataset {_names(dataset)} ({source})')
        return ClassMatch(model, {c: index[c] for c in dataset})
    only_dataset = [c for c in dataset if c not in index]
    only_model = [c for c in model if c not in set(dataset)]
    shared = [c for c in model if c in set(dataset)]
    if mode == 'transfer':
        logger.info(f'the checkpoint was trained on the classes {_names(model)}; {source} has {_names(dataset)}: '
                    'training starts from its weights with the dataset\'s classes (transfer learning)')
        return identity
    if mode == 'name' or not shared:
        hint = ('; to score only the classes both have, add --cfg-options class_match=shared' if shared and
                mode == 'name' else '; they share no class')
        raise DatasetError(f'class names differ: model {_names(model)} vs dataset {_names(dataset)} ({source})'
                           + hint)
    logger.warning(f'class_match=shared: scoring {_names(shared)} only'
                   + (f'; objects of {_names(only_dataset)} ({source}) are left out' if only_dataset else '')
                   + (f'; predictions of {_names(only_model)} (not labelled in the dataset) are ignored'
                      if only_model else ''))
    return ClassMatch(model, {c: index[c] for c in dataset if c in index}, only_dataset, only_model)


def _accepts_model_classes(dataset_type, argument: str = 'model_classes') -> bool:
    """Whether the dataset class named by ``dataset_type`` (registered, or a class) takes ``argument``."""
    import inspect

    from sscma.registry import DATASETS
    cls = dataset_type if inspect.isclass(dataset_type) else DATASETS.get(dataset_type)
    return cls is not None and argument in inspect.signature(cls.__init__).parameters


def _dataset_leaves(dataset_cfg) -> List[Dict]:
    """The dataset configs under wrappers (``RepeatDataset(dataset=...)``, ``ConcatDataset(datasets=[...])``)."""
    if not isinstance(dataset_cfg, dict):
        return []
    if isinstance(dataset_cfg.get('dataset'), dict):
        return _dataset_leaves(dataset_cfg['dataset'])
    if isinstance(dataset_cfg.get('datasets'), (list, tuple)):
        return [leaf for d in dataset_cfg['datasets'] for leaf in _dataset_leaves(d)]
    return [dataset_cfg]


def bind_model_classes(cfg, classes: Optional[Sequence[str]], model_file: str,
                       loaders: Sequence[str] = ('test_dataloader', ), mode: Optional[str] = None,
                       logger=None, keypoints: Optional[Sequence[str]] = None) -> None:
    """Make the datasets of ``loaders`` number their labels in the model's class order, matched by name.

    Sets ``model_classes`` and ``class_match`` (``mode``, default: the config's top-level ``class_match``,
    ``'name'`` when absent) on every dataset config that takes them. A model without names gets one
    warning, and ids are compared as they are.

    Args:
        cfg (Config): The loaded config; changed in place.
        classes (Sequence[str], optional): The model's class names (:func:`~sscma.deploy.model_meta.
            model_class_names`).
        model_file (str): The checkpoint or exported file, for the messages.
        loaders (Sequence[str]): Dataloader keys of ``cfg`` to bind.
        mode (str, optional): ``'name'``, ``'shared'`` or ``'transfer'``.
        keypoints (Sequence[str], optional): The model's keypoint names in its output order: set as
            ``model_keypoints`` on the datasets that take it (``PoseDataset`` reorders the data's keypoints by
            name).
    """
    if logger is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
    if mode is None:
        mode = check_class_match(cfg.get('class_match', 'name'), ('name', 'shared'))
    check_class_match(mode)
    if not classes:
        logger.warning(f'{model_file} carries no class names (a checkpoint from before names were saved, or a '
                       'file not exported by sscma): class ids are compared as they are, in the dataset\'s order')
        return
    for key in loaders:
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        for leaf in _dataset_leaves(loader.get('dataset')):
            if keypoints and _accepts_model_classes(leaf.get('type'), 'model_keypoints'):
                leaf['model_keypoints'] = list(keypoints)
            if _accepts_model_classes(leaf.get('type')):
                leaf['model_classes'] = list(classes)
                leaf['class_match'] = mode
            else:
                logger.warning(f'{key}: {leaf.get("type")} does not match class names with the model; class ids '
                               'are compared as they are')
        _metrics_follow_the_dataset(cfg, key.replace('_dataloader', '_evaluator'), logger)


def _metrics_follow_the_dataset(cfg, key: str, logger) -> None:
    """A COCO metric reading its own ``ann_file`` numbers categories in the file's order; with the dataset
    renumbered in the model's, its ground truth must come from the dataset instead (mmdet's ``CocoMetric``
    without ``ann_file`` converts the dataset's boxes)."""
    metrics = cfg.get(key)
    for metric in (metrics if isinstance(metrics, (list, tuple)) else [metrics]):
        if isinstance(metric, dict) and str(metric.get('type', '')).endswith('CocoMetric') and metric.get('ann_file'):
            logger.info(f'{key}: {metric["type"]} takes its ground truth from the dataset (numbered in the model\'s '
                        f'class order), not from ann_file={metric["ann_file"]}')
            metric['ann_file'] = None
