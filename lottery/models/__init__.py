"""Models for lottery-ticket experiments; see ``registry`` for how to add one."""

from lottery.models import conv, lenet, resnet, vgg  # noqa: F401  (registers the builders)
from lottery.models.registry import MODELS, build, register, resolve

__all__ = ["MODELS", "build", "register", "resolve"]
