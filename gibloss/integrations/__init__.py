"""Integrations with training frameworks.

* :mod:`gibloss.integrations.accelerate` — a monitor bound to an ``accelerate.Accelerator`` and
  logging of GIBLoss terms through ``accelerator.log`` (TensorBoard, W&B... when configured).
* :mod:`gibloss.integrations.transformers` — a 🤗 ``TrainerCallback`` that measures information
  planes at evaluation or every k steps and logs through the Trainer.

Both import their framework lazily, so ``import gibloss`` never requires them.
"""
