"""Boards people flash tiny vision models to, and whether an exported int8 model fits one.

Each profile states what a model may use: SRAM for the tensor arena after the firmware's own needs
(``reserved_sram_kib``: RTOS, stacks, camera frame buffer, TFLM's interpreter objects), flash for the model
after the firmware image, the CPU clock, and for NPU boards the vela accelerator. Numbers are taken from the
vendors' product pages and datasheets as cited in ``docs/export.md``; the reservations are our assumptions,
stated there too. :func:`fit_verdict` compares a model with a profile.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from sscma.utils import ExportError


@dataclass(frozen=True)
class DeviceProfile:
    """What one board offers a model.

    Attributes:
        name (str): The ``--device`` name.
        board (str): The product, as sold.
        chip (str): Microcontroller / SoC and CPU core.
        cpu_mhz (int): CPU clock.
        sram_kib (int): On-chip SRAM (plus PSRAM / SDRAM a TFLM arena may use, when ``extra_ram_kib``).
        flash_kib (int): Flash the firmware and model live in.
        reserved_sram_kib (int): SRAM assumed taken by firmware, stacks and the camera frame buffer.
        reserved_flash_kib (int): Flash assumed taken by the firmware image.
        extra_ram_kib (int): External RAM (PSRAM, SDRAM) usable for the arena, slower than SRAM.
        npu (str): The NPU, if any.
        vela_accelerator (str): vela's ``--accelerator-config`` for the NPU.
        source (str): Where the numbers come from.
    """
    name: str
    board: str
    chip: str
    cpu_mhz: int
    sram_kib: int
    flash_kib: int
    reserved_sram_kib: int
    reserved_flash_kib: int
    extra_ram_kib: int = 0
    npu: str = ''
    vela_accelerator: str = ''
    source: str = ''

    @property
    def arena_budget_bytes(self) -> int:
        return (self.sram_kib + self.extra_ram_kib - self.reserved_sram_kib) * 1024

    @property
    def model_flash_bytes(self) -> int:
        return (self.flash_kib - self.reserved_flash_kib) * 1024


DEVICES: Dict[str, DeviceProfile] = {d.name: d for d in (
    DeviceProfile('xiao_esp32s3', 'Seeed Studio XIAO ESP32S3 Sense', 'ESP32-S3 (dual Xtensa LX7)', 240,
                  sram_kib=512, extra_ram_kib=8192, flash_kib=8192, reserved_sram_kib=256,
                  reserved_flash_kib=2048, source='Seeed XIAO ESP32S3 wiki; Espressif ESP32-S3 datasheet'),
    DeviceProfile('grove_vision_ai_v2', 'Seeed Studio Grove Vision AI V2', 'Himax WiseEye2 HX6538 (Cortex-M55)',
                  400, sram_kib=2432, flash_kib=16384, reserved_sram_kib=512, reserved_flash_kib=2048,
                  npu='Arm Ethos-U55 (64 MACs)', vela_accelerator='ethos-u55-64',
                  source='Seeed Grove Vision AI V2 wiki; Himax WiseEye2 product brief'),
    DeviceProfile('nicla_vision', 'Arduino Nicla Vision', 'STM32H747AII6 (Cortex-M7 + M4)', 480, sram_kib=1024,
                  extra_ram_kib=8192, flash_kib=2048, reserved_sram_kib=384, reserved_flash_kib=768,
                  source='Arduino Nicla Vision datasheet (ABX00051); ST STM32H747 datasheet'),
    DeviceProfile('nano33_ble_sense', 'Arduino Nano 33 BLE Sense', 'nRF52840 (Cortex-M4F)', 64, sram_kib=256,
                  flash_kib=1024, reserved_sram_kib=64, reserved_flash_kib=256,
                  source='Arduino Nano 33 BLE Sense datasheet (ABX00031); Nordic nRF52840 product specification'),
    DeviceProfile('pico', 'Raspberry Pi Pico', 'RP2040 (dual Cortex-M0+)', 133, sram_kib=264, flash_kib=2048,
                  reserved_sram_kib=40, reserved_flash_kib=256,
                  source='Raspberry Pi RP2040 datasheet; Raspberry Pi Pico datasheet'),
)}


def get_device(name: str) -> DeviceProfile:
    """The profile called ``name``; an :class:`ExportError` listing the known ones otherwise."""
    if name not in DEVICES:
        raise ExportError(f'--device {name}: unknown board; choose from {", ".join(DEVICES)} '
                          '(or `--device list`)')
    return DEVICES[name]


def device_table() -> str:
    """The profiles as a markdown table (``--device list``)."""
    rows = ['| device | board | chip | clock | SRAM (usable for the arena) | flash (usable for the model) | NPU |',
            '| --- | --- | --- | --- | --- | --- | --- |']
    for d in DEVICES.values():
        extra = f' + {d.extra_ram_kib} KiB external' if d.extra_ram_kib else ''
        rows.append(f'| `{d.name}` | {d.board} | {d.chip} | {d.cpu_mhz} MHz | {d.sram_kib} KiB{extra} '
                    f'({d.arena_budget_bytes // 1024} KiB) | {d.flash_kib} KiB ({d.model_flash_bytes // 1024} KiB) | '
                    f'{d.npu or "-"} |')
    return '\n'.join(rows)


def fit_verdict(device: DeviceProfile, arena_bytes: int, model_bytes: int, input_hw: Sequence[int],
                missing_ops: Sequence[str] = (), npu_cpu_ops: Optional[Sequence[str]] = None) -> Dict:
    """Whether a model fits ``device``: the TFLM arena against the SRAM budget, the file against the flash
    budget, the op list against TFLM, and (NPU boards) the ops vela leaves on the CPU.

    Returns:
        dict: ``fits`` (bool), ``problems`` (list of str), ``lever`` (the biggest change that would help, or
        ``''``), ``line`` (one printable line: FITS / DOES NOT FIT with the numbers).
    """
    problems: List[str] = []
    arena_kib, budget_kib = arena_bytes / 1024, device.arena_budget_bytes / 1024
    if arena_bytes > device.arena_budget_bytes:
        problems.append(f'arena {arena_kib:.1f} KiB > {budget_kib:.0f} KiB of RAM left for it')
    if model_bytes > device.model_flash_bytes:
        problems.append(f'model {model_bytes / 1024:.1f} KiB > {device.model_flash_bytes / 1024:.0f} KiB of flash')
    if missing_ops:
        problems.append(f'TFLM has no kernel for {", ".join(missing_ops)}')
    lever = ''
    if arena_bytes > device.arena_budget_bytes:
        h, w = int(input_hw[0]), int(input_hw[1])
        # activations scale with the input area: the smaller square input that would fit
        side = int((device.arena_budget_bytes / arena_bytes) ** 0.5 * min(h, w)) // 8 * 8
        if side >= 32:
            saved = arena_bytes * (1 - (side * side) / (h * w)) / 1024
            lever = f'input {h}x{w} -> {side}x{side} saves about {saved:.0f} KiB of arena'
        else:
            lever = 'a smaller width (widen_factor) or pruning (tools/prune.py): the input alone cannot shrink enough'
    elif model_bytes > device.model_flash_bytes:
        lever = 'fewer parameters: a smaller widen_factor or pruning (tools/prune.py)'
    notes = ''
    if device.npu and npu_cpu_ops:
        notes = f'; on {device.npu} vela leaves {", ".join(npu_cpu_ops)} on the CPU'
    status = 'FITS' if not problems else 'DOES NOT FIT'
    detail = '; '.join(problems) if problems else (f'arena {arena_kib:.1f} of {budget_kib:.0f} KiB, model '
                                                   f'{model_bytes / 1024:.1f} of {device.model_flash_bytes / 1024:.0f} '
                                                   'KiB flash')
    line = f'{device.name} ({device.board}): {status}: {detail}{notes}' + (f'. Biggest lever: {lever}' if lever else '')
    return dict(device=device.name, fits=not problems, problems=problems, lever=lever, line=line)
