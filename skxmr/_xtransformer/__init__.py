"""The text model: XTransformerClassifier and its parts.

- ``_estimator``: ``XTransformerClassifier`` (encoder + TF-IDF + XR-Linear ranker).
- ``_encoder``: loading the sentence-transformers encoder (offline default) and encoding.
- ``_fine_tune``: fine-tuning the encoder on the label tree's clusters.
- ``_neighbors``: nearest training texts (exact, or by ``_ann``) and their label votes.
- ``_ann``: approximate nearest neighbours (a faiss HNSW graph).
- ``_embedding_cache``: embeddings kept by encoder fingerprint and text.
- ``_weight_search``: the "auto" weights, chosen by a validation split.
- ``_text``: validation of text inputs and the default TF-IDF vectorizer.
"""

from skxmr._xtransformer._estimator import XTransformerClassifier

__all__ = ["XTransformerClassifier"]
