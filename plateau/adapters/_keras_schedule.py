"""``ScaledSchedule``: a Keras ``LearningRateSchedule`` times the plateau's scale.

The Keras adapter (:mod:`plateau.adapters.keras`, which exports it) installs one in
place of an optimizer's schedule; it is registered as ``plateau>ScaledSchedule``,
so ``keras.models.load_model`` rebuilds it once the adapter is imported.
"""

from __future__ import annotations

from typing import Any

import keras

from plateau._checks import check_non_negative

__all__ = ["SCALE_NAME", "ScaledSchedule", "Schedule"]

SCALE_NAME = "plateau_scale"
"""The name of the scale's variable."""
Schedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="plateau")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """A ``LearningRateSchedule`` scaled by the plateau: ``schedule(step) * scale``.

    :class:`ReduceLROnPlateau` installs it in place of an optimizer's schedule. Its
    ``scale`` (a float >= 0 to start from, or a scalar float32 ``keras.Variable``, as
    ``optimizer.add_variable`` makes) is the core's lr at the reference 1.0 (see
    ``plateau.scale_base``); it serializes with the scale's value. A bad argument is a
    TypeError or ValueError naming it.

    Example:
        >>> import keras
        >>> base = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
        >>> scaled = ScaledSchedule(base, 0.25)
        >>> float(scaled(10)) == float(base(10)) * 0.25
        True
        >>> type(ScaledSchedule.from_config(scaled.get_config()).schedule).__name__
        'ExponentialDecay'
    """

    def __init__(self, schedule: Any, scale: float | Any = 1.0) -> None:
        if isinstance(schedule, ScaledSchedule) or not isinstance(schedule, Schedule):
            raise TypeError(
                "'schedule' must be a keras.optimizers.schedules.LearningRateSchedule other "
                f"than a ScaledSchedule, got {type(schedule).__name__}"
            )
        if isinstance(scale, keras.Variable):
            if tuple(scale.shape) != () or scale.dtype != "float32":
                raise TypeError(
                    "'scale' must be a scalar float32 keras.Variable, got shape "
                    f"{tuple(scale.shape)} and dtype {scale.dtype}"
                )
        else:
            value = check_non_negative("scale", scale)
            scale = keras.Variable(value, dtype="float32", trainable=False, name=SCALE_NAME)
        self.schedule = schedule
        self.scale = scale

    def __call__(self, step: Any) -> Any:
        """The schedule's lr at `step` times the scale, in float32."""
        return keras.ops.multiply(keras.ops.cast(self.schedule(step), "float32"), self.scale)

    def get_config(self) -> dict[str, Any]:
        """The schedule's serialized config and the scale's current value."""
        schedule = keras.saving.serialize_keras_object(self.schedule)
        return {"schedule": schedule, "scale": float(self.scale.numpy())}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScaledSchedule:
        """Rebuild from :meth:`get_config`'s output, with a new variable for the scale."""
        schedule = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(schedule, config["scale"])
