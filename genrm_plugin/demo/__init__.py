"""``genrm demo``: the whole method on a laptop CPU, offline, in a world whose preferences are verifiable.

A tiny Llama is pretrained on a column-wise addition world (:mod:`genrm_plugin.toy.world`),
judges are trained on it with the package's own recipes, evaluated in and out of distribution,
and the best one is used as a reward (Best-of-N, GRPO). See :func:`run.run_demo` and
:class:`config.DemoConfig`.
"""

from genrm_plugin.demo.config import DemoConfig

__all__ = ["DemoConfig"]
