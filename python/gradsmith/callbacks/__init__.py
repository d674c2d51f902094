"""Keras 3 callbacks: hooks into ``fit`` / ``evaluate`` / ``predict``.

Names, arguments, defaults and behaviour follow ``keras.callbacks`` (Keras 3):
``Callback``, ``CallbackList``, ``History``, ``ProgbarLogger``, ``EarlyStopping``,
``ModelCheckpoint``, ``ReduceLROnPlateau``, ``LearningRateScheduler``,
``TerminateOnNaN``, ``CSVLogger``, ``LambdaCallback`` and ``TensorBoard`` (scalars).

What the callbacks use of the model (the whole interface):

* ``model.stop_training`` -- a bool the training loop reads after each batch
  and each epoch (EarlyStopping, TerminateOnNaN set it);
* ``model.optimizer.learning_rate`` -- readable as a float (or a schedule, when
  the optimizer offers ``_current_learning_rate()``), and settable to a float
  (ReduceLROnPlateau, LearningRateScheduler);
* ``model.get_weights()`` / ``model.set_weights(list)`` (EarlyStopping with
  ``restore_best_weights``);
* ``model.save(path)`` / ``model.save_weights(path)`` (ModelCheckpoint);
* optional: ``model.metrics_names`` (CSVLogger), and metric objects carrying a
  ``_direction`` of ``"up"``/``"down"`` in ``model.metrics`` /
  ``model.compiled_metrics`` (mode='auto' of the monitoring callbacks).

One module per callback (``early_stopping``, ``model_checkpoint``,
``learning_rate`` (ReduceLROnPlateau, LearningRateScheduler), ``csv_logger``,
``lambda_callback``, ``terminate_on_nan``, ``tensorboard``) on ``callback`` (the Callback base)
and ``monitor_callback`` (MonitorCallback); ``history``, ``progbar``
(Progbar, ProgbarLogger) and ``callback_list`` (CallbackList) are what the
training loop itself uses. This package needs only NumPy and the standard
library.
"""
from gradsmith.callbacks.callback import Callback
from gradsmith.callbacks.callback_list import CallbackList
from gradsmith.callbacks.csv_logger import CSVLogger
from gradsmith.callbacks.early_stopping import EarlyStopping
from gradsmith.callbacks.history import History
from gradsmith.callbacks.lambda_callback import LambdaCallback
from gradsmith.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from gradsmith.callbacks.model_checkpoint import ModelCheckpoint
from gradsmith.callbacks.monitor_callback import MonitorCallback
from gradsmith.callbacks.progbar import Progbar, ProgbarLogger
from gradsmith.callbacks.tensorboard import TensorBoard
from gradsmith.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "Progbar", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN", "CSVLogger", "LambdaCallback",
           "MonitorCallback", "TensorBoard"]
