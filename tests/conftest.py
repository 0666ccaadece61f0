"""Shared fixtures. Tests never reach a model hub: HF_HUB_OFFLINE is set before
any Hugging Face library is imported."""

import os

import numpy as np
import pytest
import scipy.sparse as sp

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_encoder(folder, texts, seed=0):
    """Save a tiny randomly initialised sentence-transformers model to ``folder``.

    A WordPiece tokenizer trained on ``texts`` (a few hundred tokens), a 2-layer
    BERT of width 32 with random weights, mean pooling and normalisation: every
    code path of a real encoder, in well under a second per batch.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer import modules as st_models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models as st_models
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers import models as tok_models
    from tokenizers import trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(tok_models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(t, tokenizer.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
    fast = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]",
                             pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                             mask_token="[MASK]", model_max_length=64)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(seed)
    bert_dir = os.path.join(folder, "bert")
    BertModel(config).save_pretrained(bert_dir)
    fast.save_pretrained(bert_dir)
    word = st_models.Transformer(bert_dir, max_seq_length=64)
    pooling = st_models.Pooling(config.hidden_size, "mean")
    model = SentenceTransformer(modules=[word, pooling, st_models.Normalize()],
                                device="cpu")
    path = os.path.join(folder, "tiny-encoder")
    model.save(path, create_model_card=False)
    return path


def describe_case(case):
    """A short text of a generated test case (a dict of inputs) for failure
    messages: sparse matrices and arrays by format, shape and dtype, long bytes
    and lists cut (shared by test_fuzzing and test_hardening)."""
    if not isinstance(case, dict):
        return repr(case)[:800]
    parts = []
    for key, value in case.items():
        if sp.issparse(value):
            value = (f"{value.format} {value.shape} {value.dtype} nnz={value.nnz} "
                     f"indices={value.indices.dtype}")
        elif isinstance(value, np.ndarray):
            value = f"ndarray {value.shape} {value.dtype}"
        elif isinstance(value, bytes) and len(value) > 300:
            value = value[:300] + b"..."
        elif isinstance(value, list) and len(value) > 8:
            value = f"list of {len(value)}: {value[:4]}..."
        parts.append(f"{key}={value!r}")
    return ", ".join(parts)


@pytest.fixture(scope="session")
def debtags_small(debtags_train):
    """A small slice of the bundled texts: (train texts, train tags, test texts,
    test tags)."""
    from skxmr.datasets import load_debian_debtags

    texts, tags = debtags_train
    test_texts, test_tags = load_debian_debtags(subset="test", return_X_y=True)
    return texts[:600], tags[:600], test_texts[:150], test_tags[:150]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, debtags_small):
    """Path of a tiny random sentence-transformers encoder (built once)."""
    pytest.importorskip("sentence_transformers", reason="the transformer extra")
    return build_tiny_encoder(str(tmp_path_factory.mktemp("encoder")),
                              debtags_small[0])


# ------------------------------------------------------- generated data, shared
# Session-scoped: built once for the whole run. Tests only read them (a test that
# needs to change one works on a copy).
@pytest.fixture(scope="session")
def xmc_split():
    """``X, Y, X_test, Y_test`` of ``make_xmc_classification(2400, 3000, 400,
    random_state=0)``: 2000 training rows and 400 test rows."""
    from skxmr.datasets import make_xmc_classification

    X, Y = make_xmc_classification(2400, 3000, 400, random_state=0)
    return X[:2000], Y[:2000], X[2000:], Y[2000:]


@pytest.fixture(scope="session")
def xmc_files(tmp_path_factory):
    """A folder with ``make_xmc_classification(700, 200, 40, random_state=0)``
    as files: ``train.txt``/``test.txt`` (XMC format, 500 and 200 rows) and the
    same rows as ``X.npz``, ``Y.npz``, ``Xt.npz``, ``Yt.npz``; read-only."""
    from skxmr.datasets import dump_xmc_file, make_xmc_classification

    folder = tmp_path_factory.mktemp("xmc")
    X, Y = make_xmc_classification(700, 200, 40, random_state=0)
    dump_xmc_file(X[:500], Y[:500], folder / "train.txt")
    dump_xmc_file(X[500:], Y[500:], folder / "test.txt")
    for name, M in (("X", X[:500]), ("Y", Y[:500]), ("Xt", X[500:]), ("Yt", Y[500:])):
        sp.save_npz(folder / f"{name}.npz", M)
    return folder


@pytest.fixture(scope="session")
def debtags_train():
    """``texts, tags`` of the bundled Debian debtags training split."""
    from skxmr.datasets import load_debian_debtags

    return load_debian_debtags(subset="train", return_X_y=True)


@pytest.fixture(scope="module")
def small_xrlinear():
    """A small fitted XRLinearClassifier (900 generated rows) and 300 test rows."""
    from skxmr import LabelIndexer, XRLinearClassifier
    from skxmr.datasets import make_xmc_classification

    X, Y = make_xmc_classification(1200, 300, 80, random_state=0)
    model = XRLinearClassifier(LabelIndexer(branching_factor=4, max_leaf_size=8,
                                            random_state=0),
                               random_state=0, n_jobs=1).fit(X[:900], Y[:900])
    return model, X[900:]
