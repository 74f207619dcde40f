"""Join a Tributary run from an engine of your own.

`EngineLink` starts `tributary worker --engine-socket` beside your process; the worker does membership,
the ring, codecs, DiLoCo's outer step, validation and reports, while your engine trains the inner steps
on one shared float32 buffer. `DiLoCo` (in `tributary.torch_diloco`) wraps a PyTorch module for it.
"""

from .layout import gpt2_layout, layout_hash, run_gpt2_layout
from .link import EngineLink, Round, TributaryError

__all__ = ["EngineLink", "Round", "TributaryError", "gpt2_layout", "layout_hash", "run_gpt2_layout"]
