"""bhpvas core: load BERT-family classifiers and data, gate and prune attention heads, evaluate.

UI-free (never imports streamlit); long functions report progress through a callback.
"""

from .cache import DiskCache
from .data import TextDataset, load_dataset
from .errors import BhpvasError, CacheError, DataError, ModelLoadError, SchemeError
from .evaluation import EvalResult, evaluate
from .loading import LoadedModel, load_model
from .pruning import prune_heads, save_pruned
from .schemes import Scheme

__all__ = [
    "BhpvasError",
    "CacheError",
    "DataError",
    "DiskCache",
    "EvalResult",
    "LoadedModel",
    "ModelLoadError",
    "Scheme",
    "SchemeError",
    "TextDataset",
    "evaluate",
    "load_dataset",
    "load_model",
    "prune_heads",
    "save_pruned",
]
__version__ = "0.1.0"
