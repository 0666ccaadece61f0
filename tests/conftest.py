"""Shared fixtures. Tests never reach a model hub: HF_HUB_OFFLINE is set before
any Hugging Face library is imported."""

import os

import pytest

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


@pytest.fixture(scope="session")
def debtags_small():
    """A small slice of the bundled texts: (train texts, train tags, test texts,
    test tags)."""
    from skxmr.datasets import load_debian_debtags

    texts, tags = load_debian_debtags(subset="train", return_X_y=True)
    test_texts, test_tags = load_debian_debtags(subset="test", return_X_y=True)
    return texts[:600], tags[:600], test_texts[:150], test_tags[:150]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, debtags_small):
    """Path of a tiny random sentence-transformers encoder (built once)."""
    pytest.importorskip("sentence_transformers", reason="the transformer extra")
    return build_tiny_encoder(str(tmp_path_factory.mktemp("encoder")),
                              debtags_small[0])
