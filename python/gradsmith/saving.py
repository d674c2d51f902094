"""``gradsmith.saving.load_model`` (also ``gradsmith.models.load_model``), as Keras 3 names it."""
from gradsmith.models import load_model

__all__ = ["load_model"]
