"""Text inputs: validation of a collection of documents, the default TF-IDF."""

import numpy as np


def default_text_vectorizer():
    """The TF-IDF every text model of skxmr uses unless told otherwise.

    Word uni- and bigrams, sublinear term frequencies, terms in at least two
    documents, at most 200,000 of them, float32 rows (L2-normalised).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2),
                           max_features=200_000, dtype=np.float32)


def check_texts(X, name="X"):
    """Return ``X`` as a list of ``str``, or raise a clear error.

    Accepts a list, tuple, 1-D NumPy array or pandas Series of strings (one
    document per row). A single string, a 2-D array, a sparse matrix or any
    element that is not a string (None, NaN, numbers, bytes) raise
    ``TypeError``/``ValueError`` naming the first offending row.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{name} must be a collection of documents (a list of str), got a single "
            f"{type(X).__name__}; wrap it in a list."
        )
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise TypeError(
            f"{name} must be a collection of documents (a list of str), got a sparse "
            f"matrix ({type(X).__name__}); this estimator embeds texts itself."
        )
    if hasattr(X, "to_numpy") and getattr(X, "ndim", 1) == 1:
        X = X.to_numpy()  # a pandas Series
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one document per row), got an array of shape "
                f"{X.shape}."
            )
        X = X.tolist()
    try:
        texts = list(X)
    except TypeError:
        raise TypeError(
            f"{name} must be a collection of documents (a list of str), got "
            f"{type(X).__name__}."
        ) from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"{name}[{i}] is {type(text).__name__} {text!r:.40}, not a str: every "
                "row must be a document (missing texts could be given as '')."
            )
    return texts
