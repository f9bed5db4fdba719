"""The TensorBoard backend writes readable event files without importing TensorFlow (installed for export)."""
import glob
import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('tensorflow')  # the point is moot where TensorFlow is not installed

SCRIPT = textwrap.dedent('''
    import json, sys
    import sscma
    from mmengine.registry import DefaultScope
    from sscma.registry import VISBACKENDS
    DefaultScope.get_instance('tb_test', scope_name='sscma')
    backend = VISBACKENDS.build(dict(type='TensorboardVisBackend', save_dir=sys.argv[1]))
    for step in range(3):
        backend.add_scalar('loss', 1.0 / (step + 1), step)
    backend.close()
    rss_mb = int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) // 1024
    print(json.dumps(dict(cls=type(backend).__module__, tensorflow='tensorflow' in sys.modules, rss_mb=rss_mb)))
''')


def test_event_file_without_tensorflow(tmp_path):
    out = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path)], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info['cls'] == 'sscma.visualization.tensorboard_backend'
    assert info['tensorflow'] is False, info

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = glob.glob(str(tmp_path / '**' / 'events.out.tfevents.*'), recursive=True)
    assert len(events) == 1
    acc = EventAccumulator(events[0])
    acc.Reload()
    assert [round(e.value, 4) for e in acc.Scalars('loss')] == [1.0, 0.5, 0.3333]
