"""``sscma configs``: the packaged configs, reachable by name from any folder (``sscma train fomo_mobnetv2``)."""
import argparse

DESCRIPTION = 'List the packaged configs (name, task, input size, epochs, what it is), usable by name'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('filter', nargs='?', default='', help='show only names containing this text')


def config_rows(name_filter: str = ''):
    """``(name, task, input WxH, epochs, first line of the config's header comment)`` of each packaged config."""
    import os.path as osp

    from sscma.registry import MODELS
    from sscma.tasks.base import task_for_class
    from sscma.utils import load_config, register_all_modules
    from sscma.utils.config import top_level_variables
    from sscma.utils.packaged_configs import find_config, packaged_configs, packaged_configs_dir
    register_all_modules()
    rows = []
    for name in packaged_configs():
        if name_filter not in name:
            continue
        cfg = load_config(name)
        cls = MODELS.get(cfg.model.get('type', '')) if isinstance(cfg.model, dict) else None
        task = task_for_class(cls) if cls is not None else '-'
        imgsz = cfg.get('imgsz')
        size = f'{imgsz[0]}x{imgsz[1]}' if imgsz else '-'
        with open(osp.join(packaged_configs_dir(), name + '.py'), encoding='utf-8') as f:
            first = f.readline().strip()
        about = first.lstrip('# ').split('. ')[0] if first.startswith('#') else ''
        if not about and first.startswith('_base_'):  # a variant: say what it varies
            base = first.split("'")[1].lstrip('./').rsplit('.py', 1)[0]
            changed = sorted(k for k, v in top_level_variables(osp.join(packaged_configs_dir(), name + '.py')).items()
                             if v != top_level_variables(find_config(osp.join(osp.dirname(name), base))).get(k))
            about = f'{base} with {", ".join(changed) or "other fields"} changed'
        rows.append((name, task, size, str(cfg.get('max_epochs', '-')), about))
    return rows


def main(args: argparse.Namespace) -> None:
    rows = config_rows(args.filter)
    header = ('config', 'task', 'input', 'epochs', 'what it is')
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        print('  '.join(v.ljust(w) for v, w in zip(row[:4], widths)) + '  ' + row[4][:70])
    print(f'\n{len(rows)} configs; use one by name: sscma train {rows[0][0] if rows else "NAME"} [--cfg-options ...], '
          "or inherit it: _base_ = ['sscma::<name>.py']")
