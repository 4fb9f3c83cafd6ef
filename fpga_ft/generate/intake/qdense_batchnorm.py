"""Reading ``QDenseBatchnorm`` layers with QKeras 0.9.0, which does not have the class.

QKeras added ``QDenseBatchnorm`` (a QDense with its batch normalization folded in, like
``QConv2DBatchnorm``) after its 0.9.0 release, the version hls4ml 1.3 installs; a model saved
with a newer QKeras therefore does not load here ("Unknown layer: 'QDenseBatchnorm'").
:func:`qdense_batchnorm_class` gives Keras a class of that name to rebuild it with: a
``QDense`` with the same configuration keys (QDense's plus the batch normalization's plus
``ema_freeze_delay`` / ``folding_mode``) and the same weights in the same order (kernel,
bias, gamma, beta, iteration, moving mean, moving variance), whose ``call`` is the layer's
**inference** computation: the kernel and bias folded with the moving statistics
(:func:`fpga_ft.generate.intake.fold.folded_weights`), then quantized by the layer's own
quantizers. It is for loading and inference only: training it raises (QKeras's
training-time batch statistics and ``ema_freeze_delay`` are not reproduced). The intake then
folds it into a ``QDense`` like the other folded layers. When QKeras has its own
``QDenseBatchnorm``, that class is used instead (:func:`fpga_ft.generate.modelio.custom_objects`).
"""

from __future__ import annotations

_CLASS: list = []


def qdense_batchnorm_class():
    """The ``QDenseBatchnorm`` layer class for QKeras 0.9.0 (built once, on first use)."""
    if _CLASS:
        return _CLASS[0]
    import tensorflow as tf
    from qkeras import QDense

    from fpga_ft.generate.intake.fold import folded_weights

    class QDenseBatchnorm(QDense):
        """A QDense with its batch normalization folded in (inference only; see the module)."""

        def __init__(
            self,
            units,
            axis=-1,
            momentum=0.99,
            epsilon=0.001,
            center=True,
            scale=True,
            beta_initializer="zeros",
            gamma_initializer="ones",
            moving_mean_initializer="zeros",
            moving_variance_initializer="ones",
            beta_regularizer=None,
            gamma_regularizer=None,
            beta_constraint=None,
            gamma_constraint=None,
            renorm=False,
            renorm_clipping=None,
            renorm_momentum=0.99,
            fused=None,
            trainable=True,
            virtual_batch_size=None,
            adjustment=None,
            ema_freeze_delay=None,
            folding_mode="ema_stats_folding",
            **kwargs,
        ):
            super().__init__(units, trainable=trainable, **kwargs)
            self.batchnorm = tf.keras.layers.BatchNormalization(
                axis=axis,
                momentum=momentum,
                epsilon=epsilon,
                center=center,
                scale=scale,
                beta_initializer=beta_initializer,
                gamma_initializer=gamma_initializer,
                moving_mean_initializer=moving_mean_initializer,
                moving_variance_initializer=moving_variance_initializer,
                beta_regularizer=beta_regularizer,
                gamma_regularizer=gamma_regularizer,
                beta_constraint=beta_constraint,
                gamma_constraint=gamma_constraint,
                renorm=renorm,
                renorm_clipping=renorm_clipping,
                renorm_momentum=renorm_momentum,
                fused=fused,
                trainable=trainable,
                virtual_batch_size=virtual_batch_size,
                adjustment=adjustment,
            )
            self.ema_freeze_delay = ema_freeze_delay
            self.folding_mode = folding_mode

        def build(self, input_shape):
            super().build(input_shape)
            self._iteration = tf.Variable(-1, trainable=False, name="iteration", dtype=tf.int64)
            self.batchnorm.build(tf.TensorShape(input_shape)[:-1].concatenate([self.units]))

        def call(self, inputs, training=None):
            if training:
                raise NotImplementedError("fpga-ft's QDenseBatchnorm (for QKeras 0.9.0) is for inference only")
            kernel, bias = folded_weights(self, as_tensors=True)
            if self.kernel_quantizer_internal is not None:
                kernel = self.kernel_quantizer_internal(kernel)
            if self.bias_quantizer_internal is not None:
                bias = self.bias_quantizer_internal(bias)
            outputs = tf.keras.backend.bias_add(tf.keras.backend.dot(inputs, kernel), bias, data_format="channels_last")
            return self.activation(outputs) if self.activation is not None else outputs

        def get_config(self):
            config = super().get_config()
            name = config["name"]
            config.update(self.batchnorm.get_config())
            config.update({"ema_freeze_delay": self.ema_freeze_delay, "folding_mode": self.folding_mode, "name": name})
            return config

    _CLASS.append(QDenseBatchnorm)
    return QDenseBatchnorm
