"""tools/env.sh without building anything: its functions are sourced (sourcing sets nothing up) and the mmcv
progress ticker is run on a fake build tree shaped like torch's cpp_extension one (build/temp.*/build.ninja
with one `build X.o: compile X.cpp` line per source, the objects appearing beside it)."""
import os
import os.path as osp
import subprocess
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def env_sh(script, tmp_path, **env):
    """Run ``script`` in bash after sourcing tools/env.sh; SSCMA_HOME/VENV point at tmp as a safety net."""
    full = dict(os.environ, SSCMA_HOME=str(tmp_path / 'home'), SSCMA_VENV=str(tmp_path / 'venv'),
                SSCMA_PYTHON='/bin/false', **env)
    return subprocess.Popen(['bash', '-c', f'source tools/env.sh && {script}'], cwd=REPO, env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sourcing_defines_functions_and_sets_nothing_up(tmp_path):
    out, _ = env_sh('duration 1025; echo; duration 42; echo; phase "a nap" sleep 1; printf "%s\\n" "${PHASES[@]}"',
                    tmp_path).communicate(timeout=30)
    assert out.splitlines() == ['17m05s', '42s', '[sscma-env] a nap ...', 'a nap: 1s']
    assert not (tmp_path / 'venv').exists() and not (tmp_path / 'home').exists()


def test_build_progress_counts_objects(tmp_path):
    tree = tmp_path / 'mmcv-2.1.0'
    temp = tree / 'build' / 'temp.linux-x86_64-cpython-311'
    proc = env_sh(f'mmcv_build_progress {tree}', tmp_path, SSCMA_PROGRESS_INTERVAL='1')
    try:
        time.sleep(1.5)  # one line before the build tree exists
        (temp / 'ops' / 'cpu').mkdir(parents=True)
        sources = ['ops/nms', 'ops/roi_align', 'ops/cpu/nms_cpu', 'ops/cpu/roi_align_cpu']
        (temp / 'build.ninja').write_text('ninja_required_version = 1.3\n' + ''.join(
            f'build {temp}/{s}.o: compile {tree}/{s}.cpp\n' for s in sources))
        for s in sources[:3]:
            (temp / f'{s}.o').write_bytes(b'\0')
        deadline = time.time() + 20
        lines = []
        while time.time() < deadline and not any('3/4 objects' in line for line in lines):
            lines.append(proc.stdout.readline().strip())
    finally:
        proc.kill()
        proc.wait()
    assert lines[0].startswith('[sscma-env] preparing the mmcv build: ') and lines[0].endswith(' elapsed')
    assert any(line.startswith('[sscma-env] compiling mmcv ops: 3/4 objects, ') for line in lines), lines


def test_interval_is_at_most_30_s_by_default():
    text = open(osp.join(REPO, 'tools', 'env.sh')).read()
    assert 'interval=${SSCMA_PROGRESS_INTERVAL:-30}' in text
    assert 'mmcv_build_progress "$tmp/mmcv-${MMCV_VERSION}" &' in text  # the ticker runs during the build


def test_mmcv_route_follows_the_wheels_at_hand_and_enters_the_stamp(tmp_path):
    """lite (mmcv-lite + sscma's nms) unless a compiled wheel is offered or SSCMA_MMCV says otherwise."""
    import glob
    shared = glob.glob(osp.join(REPO, '..', 'shared', 'wheels', 'mmcv-2.1.0-cp311-cp311-linux_*.whl'))
    env = {k: v for k, v in os.environ.items() if k not in ('SSCMA_MMCV', 'SSCMA_WHEELS')}

    def run(script, **extra):
        proc = subprocess.run(['bash', '-c', f'source tools/env.sh && {script}'], cwd=REPO, text=True,
                              capture_output=True, timeout=60,
                              env=dict(env, SSCMA_HOME=str(tmp_path / 'home'), SSCMA_PYTHON='/bin/false', **extra))
        return proc.returncode, proc.stdout.strip(), proc.stderr

    assert run('mmcv_route')[1] == ('full' if shared else 'lite')
    offered = tmp_path / 'offered'
    offered.mkdir()
    (offered / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'')
    assert run('mmcv_route', SSCMA_WHEELS=str(offered))[1] == 'full'
    assert run('mmcv_route; mmcv_requirement', SSCMA_MMCV='lite')[1].split() == ['lite', 'mmcv-lite==2.1.0']
    assert run('mmcv_requirement', SSCMA_MMCV='full')[1] == 'mmcv==2.1.0'
    assert run('stamp_of', SSCMA_MMCV='lite')[1] != run('stamp_of', SSCMA_MMCV='full')[1]
    rc, _, err = run('mmcv_route', SSCMA_MMCV='compiled')
    assert rc == 2 and 'SSCMA_MMCV=compiled' in err and 'lite' in err
