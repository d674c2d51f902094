"""Knowledge distillation: ``gradsmith.Distiller(student, teacher)``, with the ``compile`` signature of
keras.io's knowledge-distillation example (there it is user code over ``keras.ops`` and autodiff; here it is
part of the library).

    distiller = gradsmith.Distiller(student=student, teacher=teacher)
    distiller.compile(optimizer=Adam(), metrics=[SparseCategoricalAccuracy()],
                      student_loss_fn=SparseCategoricalCrossentropy(from_logits=True),
                      distillation_loss_fn=KLDivergence(), alpha=0.1, temperature=10)
    distiller.fit(x_train, y_train, epochs=3)
    distiller.evaluate(x_test, y_test)

The loss of a batch is the example's: ``alpha * student_loss(y, s) + (1 - alpha) * T^2 *
distillation_loss(softmax(t / T), softmax(s / T))``, with s the student's outputs (logits) and t the
teacher's. The teacher only predicts (through its compiled step when it has one); its weights never change.
The student trains layer by layer: the gradient of that loss with respect to s is the student loss's
kernel gradient plus the distillation loss's kernel gradient taken back through the softmax kernel and
the 1 / T (``_loss_and_grad``); metrics see the student's outputs. The student model itself holds the
trained weights (the distiller shares them).
"""
import numpy as np

from gradsmith import losses, ops
from gradsmith.losses.reduction import y_pred_mask
from gradsmith.models import Sequential

__all__ = ["Distiller"]


class Distiller(Sequential):
    """A student model trained to match a teacher model's softened predictions as well as the labels."""

    _own_training_step = True  # its step is not the Trainer's (DataParallel across ranks refuses it)

    def __init__(self, student, teacher, name=None):
        for what, model in (("student", student), ("teacher", teacher)):
            if not getattr(model, "_is_model", False):
                raise TypeError(f"Distiller: {what} must be a gradsmith model, got {type(model).__name__}")
        if student is teacher:
            raise ValueError("Distiller: the student and the teacher must be different models")
        super().__init__(layers=[student], name=name if name is not None else "distiller")
        self.student, self.teacher = student, teacher
        self.alpha, self.temperature = 0.1, 3.0
        self.student_loss_fn = self.distillation_loss_fn = None

    def compile(self, optimizer="rmsprop", metrics=None, student_loss_fn=None, distillation_loss_fn=None, alpha=0.1,
                temperature=3, **kwargs):
        """As the example's compile: the optimizer and metrics of the student's training, the two losses, the
        weight ``alpha`` of the student loss and the ``temperature`` T."""
        if student_loss_fn is None or distillation_loss_fn is None:
            raise ValueError("Distiller.compile needs student_loss_fn and distillation_loss_fn")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Distiller: alpha must be a number in [0, 1], got {alpha!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"Distiller: temperature must be a number > 0, got {temperature!r}")
        student_loss = losses.get(student_loss_fn)
        distillation_loss = losses.get(distillation_loss_fn)
        super().compile(optimizer=optimizer, loss=student_loss, metrics=metrics, **kwargs)
        self.student_loss_fn, self.distillation_loss_fn = student_loss, distillation_loss
        self.alpha, self.temperature = float(alpha), float(temperature)

    # -- the steps -----------------------------------------------------------------------------------------
    def _compiled_step(self):
        self._plan_reason = "a Distiller trains its student layer by layer (its loss reads the teacher's outputs)"
        return None

    def _existing_compiled_step(self):
        return None

    def _teacher_outputs(self, x):
        step = self.teacher._existing_compiled_step()
        out = step.predict(x) if step is not None else None
        if out is None:
            xt, _, _ = self.teacher._prepare_batch(x, None, None)
            out = self.teacher._forward(xt, training=False)
        return np.asarray(out, np.float32)

    def _loss_and_grad(self, x, y, y_pred, sw, with_grad):
        """The example's loss of a batch and, with ``with_grad``, its gradient with respect to y_pred: the
        Trainer's hook, so training and evaluation are the Trainer's layer-by-layer steps around it."""
        t = np.float32(self.temperature)
        teacher = self._teacher_outputs(x)
        if teacher.shape != y_pred.shape:
            raise ValueError(f"Distiller: the teacher's outputs {teacher.shape} and the student's {y_pred.shape} "
                             "differ in shape")
        soft_student_logits = (y_pred / t).astype(np.float32)
        soft_teacher = ops.activation_forward((teacher / t).astype(np.float32), "softmax")
        soft_student = ops.activation_forward(soft_student_logits, "softmax")
        with y_pred_mask(self._output_mask):
            if not with_grad:
                student = self.student_loss_fn(y, y_pred, sample_weight=sw)
                distill = self.distillation_loss_fn(soft_teacher, soft_student, sample_weight=sw)
                return self.alpha * float(student) + (1 - self.alpha) * float(distill) * float(t * t), None
            student, g_student = self.student_loss_fn.value_and_grad(y, y_pred, sw)
            distill, g_soft = self.distillation_loss_fn.value_and_grad(soft_teacher, soft_student, sw)
        # d distill / d y_pred = softmax'(y_pred / T)^T g_soft / T; times T^2 and (1 - alpha)
        g_distill = ops.activation_backward(g_soft, soft_student_logits, "softmax") * np.float32(
            (1 - self.alpha) * self.temperature)
        grad = (np.float32(self.alpha) * g_student + g_distill).astype(np.float32)
        return self.alpha * float(student) + (1 - self.alpha) * float(distill) * float(t * t), grad

    def call(self, x):
        return self.student(x)

    def save(self, filepath, overwrite=True):
        raise NotImplementedError("Distiller: save the student (distiller.student.save(...)), which holds the "
                                  "trained weights")

    def get_config(self):
        raise NotImplementedError("Distiller: describe the student (distiller.student.get_config())")
