"""An in-process cache of text embeddings, keyed by the encoder and the text.

Encoding dominates the cost of a frozen ``XTransformerClassifier`` on a CPU.
Refits on the same texts, the folds of a grid search (clones of one
estimator), and ``predict`` after ``fit`` on texts already seen all ask again
for embeddings computed before; this cache answers them without running the
encoder. An entry's key is the encoder's fingerprint (a hash of its weights,
so that a fine-tuned encoder never meets the embeddings of its pretrained
self), the settings that change embeddings (``max_seq_length``,
normalisation, int8 quantisation, device type) and the text itself.

The cache holds at most ``max_rows`` embeddings (least recently used go
first) and lives as long as the process: nothing is written to disk.
"""

import collections
import hashlib
import threading

import numpy as np

DEFAULT_MAX_ROWS = 200_000  # 300 MB of 384-dim float32 rows


def encoder_fingerprint(encoder):
    """A hex digest of a torch module's parameters and buffers (names, dtypes,
    shapes, values) and of its class: equal for equal weights."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(encoder).__qualname__.encode())
    for name, tensor in encoder.state_dict().items():
        array = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{array.dtype}:{tuple(array.shape)}".encode())
        digest.update(array.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()


def _byte_dtype():
    import torch

    return torch.uint8


class EmbeddingCache:
    """Least-recently-used store of embedding rows keyed by (settings, text).

    Parameters
    ----------
    max_rows : int
        Most rows held; 0 disables the cache.
    """

    def __init__(self, max_rows=DEFAULT_MAX_ROWS):
        self.max_rows = max_rows
        self._rows = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self):
        return len(self._rows)

    def clear(self):
        with self._lock:
            self._rows.clear()
            self.hits = self.misses = 0

    def embed(self, key, texts, encode):
        """Embeddings of ``texts`` (rows in their order), encoding only the
        distinct texts not cached under ``key`` with ``encode(list_of_texts)``
        (which returns a float32 array, one row per text)."""
        with self._lock:
            found = {}
            for text in texts:
                row = self._rows.get((key, text))
                if row is not None:
                    found[text] = row
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        self.hits += len(texts) - sum(1 for t in texts if t not in found)
        self.misses += len(missing)
        if missing:
            fresh = np.asarray(encode(missing), dtype=np.float32)
            for text, row in zip(missing, fresh):
                row = row.copy()
                row.setflags(write=False)
                found[text] = row
            self._store(key, missing, found)
        with self._lock:
            for text in found:
                if (key, text) in self._rows:
                    self._rows.move_to_end((key, text))
        if not texts:
            return None
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def _store(self, key, texts, rows):
        if self.max_rows <= 0:
            return
        with self._lock:
            for text in texts:
                self._rows[(key, text)] = rows[text]
            while len(self._rows) > self.max_rows:
                self._rows.popitem(last=False)


#: The process-wide cache that ``XTransformerClassifier`` uses.
CACHE = EmbeddingCache()
