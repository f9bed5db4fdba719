# Knowledge distillation: a MobileNetV2 0.1 student learns from the labels and from a trained MobileNetV2 1.0
# teacher's soft predictions: (1 - alpha) * label loss + alpha * T^2 * KL(teacher || student) at temperature T.
# Train the teacher first, then point teacher_checkpoint at its checkpoint (or at its work dir: best_*.pth):
#   python tools/train.py configs/classification/mobilenetv2_1.0_digits.py
#   python tools/train.py configs/distillation/mobilenetv2_0.1_from_1.0_digits.py \
#       --cfg-options teacher_checkpoint=work_dirs/mobilenetv2_1.0_digits
# Checkpoints hold the student only: test/export them with this config or with the plain student
# configs/classification/mobilenetv2_0.35_digits.py --cfg-options widen_factor=0.1 (no teacher needed).
_base_ = ['../classification/mobilenetv2_0.35_digits.py']

num_classes = 10
widen_factor = 0.1
init = 'scratch'  # the student's measured start (the distilled 0.1 file's last stage probes below random on digits)
teacher_config = 'classification/mobilenetv2_1.0_digits'  # a packaged config by name, or a file
teacher_checkpoint = 'work_dirs/mobilenetv2_1.0_digits'
alpha = 0.5
temperature = 4.0

model = dict(
    type='KnowledgeDistillationClassifier',
    teacher_config=teacher_config,
    teacher_checkpoint=teacher_checkpoint,
    # the student's num_classes (and data) are the teacher's too
    teacher_cfg_options=dict(num_classes=num_classes),
    alpha=alpha,
    distill_loss=dict(type='DistillationKLLoss', temperature=temperature),
)
