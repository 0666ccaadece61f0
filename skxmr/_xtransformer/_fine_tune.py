"""Coarse-to-fine fine-tuning of a sentence-transformers encoder on a label tree.

The encoder learns the cluster-matching task of XR-Transformer: for each level
``t`` of the tree, from the top down, a linear head scores the level's nodes on
the encoder's sentence embedding, and encoder and head are trained together on
``Y_t`` (row -> node relevance). A row's loss covers only its candidate nodes:
the children of its true parents (teacher forcing) and of the ``beam_size``
parents the previous level's head ranks highest for it (matcher-aware hard
negatives), so negatives come from the same parents as the positives. Each head
starts from its parent's weights (children inherit), so a level starts where
the coarser one ended. torch is imported by the caller; this module only needs
it at call time.
"""

import math

import numpy as np
import scipy.sparse as sp

from skxmr._xtransformer._encoder import embedding_dimension
from skxmr._progress import progress

# The heads start at zero (level 1) or from their parents, and move faster
# than the pretrained encoder: their learning rate is this multiple of
# ``learning_rate``.
HEAD_LR_FACTOR = 20.0
# The linear probe (heads fitted on the frozen embeddings before fine-tuning):
# Adam on minibatches, a learning rate that decays linearly to zero.
PROBE_EPOCHS = 5
PROBE_BATCH_SIZE = 256
PROBE_LEARNING_RATE = 1e-2
PROBE_MIN_STEPS = 200  # small data: more passes (the probe is cheap)


def _binary(M):
    M = sp.csr_matrix(M, dtype=np.float32, copy=True)
    M.data[:] = 1.0
    M.eliminate_zeros()
    return M


def level_targets(Y, tree):
    """Row -> node 0/1 relevance (CSR float32) for every level 1 .. n_levels."""
    Y = _binary(Y)
    targets = [_binary(tree.transform(Y, t)) for t in range(1, tree.n_levels)]
    targets.append(Y[:, tree.label_perm].tocsr())
    return targets


def steps_per_level(n_rows, n_levels, batch_size, epochs, max_steps):
    """Optimizer steps for each level: ``epochs`` passes over the rows, the total
    capped at ``max_steps`` (split evenly, at least one step a level)."""
    steps = epochs * math.ceil(n_rows / batch_size)
    if max_steps is not None:
        steps = min(steps, max(1, max_steps // n_levels))
    return steps


def cross_fitted_margins(X, Y, tree, ranker, rng, row_weights=None):
    """``node_offsets`` for residual fine-tuning: each row's node margins from
    a linear model that never saw it.

    The rows (those of nonzero weight) are split in two halves at random; a
    clone of ``ranker`` (an ``XRLinearClassifier``) is fitted on each half on
    ``tree``, and a row's margins at level ``t`` are ``[x, bias] @ coef_[t-1]``
    of the model of the other half. Margins of the model fitted on a row
    itself would be near the hinge's margin already and leave nothing to learn.

    Parameters
    ----------
    X : CSR matrix of shape (n_rows, n_features)
    Y : CSR matrix of shape (n_rows, n_labels)
    tree : LabelTree
    ranker : XRLinearClassifier
        The template (its solver settings); cloned with ``indexer=tree``.
    rng : numpy.random.RandomState
    row_weights : ndarray of shape (n_rows,) or None

    Returns
    -------
    node_offsets : callable (level, rows) -> ndarray of shape (len(rows), n_nodes), or None
        None when a half would hold no positive label (too few rows to split):
        fine-tuning then runs without the residual.
    """
    from sklearn.base import clone

    rows = np.arange(X.shape[0]) if row_weights is None else np.flatnonzero(row_weights)
    in_first = np.zeros(X.shape[0], dtype=bool)
    in_first[rows[rng.permutation(rows.size)[: rows.size // 2]]] = True
    halves = (np.flatnonzero(in_first), rows[~in_first[rows]])
    if any(Y[half].nnz == 0 for half in halves):
        return None
    models = []
    for half in halves:
        model = clone(ranker).set_params(indexer=tree,
                                         random_state=rng.randint(np.iinfo(np.int32).max))
        weights = None if row_weights is None else row_weights[half]
        models.append(model.fit(X[half], Y[half], sample_weight=weights))
    bias = models[0].bias
    with_bias = sp.hstack([X, np.full((X.shape[0], 1), bias, dtype=X.dtype)], format="csr")

    def node_offsets(level, batch):
        x = with_bias[batch]
        first, second = ((x @ model.coef_[level - 1]).toarray() for model in models)
        # rows of the first half get the second half's model, and the other way round
        return np.where(in_first[batch][:, None], second, first).astype(np.float32)

    return node_offsets


def _to_device(features, device):
    import torch

    return {key: value.to(device) if torch.is_tensor(value) else value
            for key, value in features.items()}


def _candidate_mask(prev_head, embedding, prev_targets, parents, beam_size):
    """Nodes a row's loss covers: the children of its true parents and of the
    ``beam_size`` parents ``prev_head`` ranks highest (all nodes on level 1)."""
    import torch

    matched = torch.as_tensor(prev_targets.toarray() > 0, device=embedding.device)
    with torch.no_grad():
        beam = prev_head(embedding.detach()).topk(
            min(beam_size, matched.shape[1]), dim=1).indices
    matched.scatter_(1, beam, True)
    return matched[:, parents].float()


def _batches(rows, batch_size, steps, rng):
    """``steps`` batches of ``rows``, epoch after epoch, each epoch in a new
    random order."""
    order, pos = rows[rng.permutation(rows.size)], 0
    for _ in range(steps):
        if pos >= order.size:  # next epoch
            order, pos = rows[rng.permutation(rows.size)], 0
        yield order[pos: pos + batch_size]
        pos += batch_size


def _batch_loss(head, embedding, batch, level, targets, prev_head, parents, *, loss,
                beam_size, node_offsets, weights):
    """Mean (weighted) loss of ``head`` on the rows ``batch`` at ``level``, over
    each row's candidate nodes; the scores include ``node_offsets``."""
    import torch
    import torch.nn.functional as F

    scores = head(embedding)
    if node_offsets is not None:
        scores = scores + torch.as_tensor(node_offsets(level, batch), dtype=scores.dtype,
                                          device=scores.device)
    y = torch.as_tensor(targets[level - 1][batch].toarray(), device=scores.device)
    mask = torch.ones_like(y) if prev_head is None else _candidate_mask(
        prev_head, embedding, targets[level - 2][batch], parents, beam_size)
    if loss == "bce":
        per_node = F.binary_cross_entropy_with_logits(scores, y, reduction="none")
    else:
        per_node = F.relu(1.0 - (2.0 * y - 1.0) * scores) ** 2
    per_row = (per_node * mask).sum(dim=1)
    if weights is not None:
        per_row = per_row * weights[batch].to(scores.device)
    return per_row.mean()


def probe_heads(embeddings, targets, tree, levels, *, loss="squared_hinge",
                beam_size=10, epochs=PROBE_EPOCHS, batch_size=PROBE_BATCH_SIZE,
                learning_rate=PROBE_LEARNING_RATE, row_weights=None, node_offsets=None,
                rng, device="cpu"):
    """Linear heads fitted on fixed embeddings, one per level in ``levels``.

    The first phase of linear-probe-then-fine-tune: heads trained with the
    encoder frozen, on its embeddings of the training rows, with the loss and
    the candidate nodes of :func:`fine_tune_encoder`. Fine-tuning that starts
    from them moves the encoder by gradients of a head that already ranks,
    instead of the near-random gradients of a head at zero.

    ``row_weights`` weight each row's loss as in :func:`fine_tune_encoder`
    (rows of weight 0 are never drawn). Returns a dict level ->
    torch.nn.Linear (frozen parameters).
    """
    import torch

    X = torch.as_tensor(np.ascontiguousarray(embeddings, dtype=np.float32), device=device)
    dim = X.shape[1]
    rows = np.arange(X.shape[0]) if row_weights is None else np.flatnonzero(row_weights)
    weights = None if row_weights is None else torch.as_tensor(
        row_weights, dtype=torch.float32)
    steps = max(epochs * math.ceil(rows.size / batch_size), PROBE_MIN_STEPS)
    heads, prev_head = {}, None
    for t in levels:
        parents = torch.as_tensor(tree.parents(t), device=device)
        head = _initial_head(prev_head, parents, dim, int(tree.level_sizes[t - 1]), device)
        optimizer = torch.optim.Adam(head.parameters(), lr=learning_rate)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 1.0 - step / steps)
        for batch in _batches(rows, batch_size, steps, rng):
            value = _batch_loss(head, X[batch], batch, t, targets, prev_head, parents,
                                loss=loss, beam_size=beam_size,
                                node_offsets=node_offsets, weights=weights)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            scheduler.step()
        for p in head.parameters():
            p.requires_grad_(False)
        heads[t] = prev_head = head
    return heads


def _initial_head(prev_head, parents, dim, n_nodes, device):
    """A level's head at zero (level 1) or with the children on their parent's weights."""
    import torch

    head = torch.nn.Linear(dim, n_nodes).to(device)
    with torch.no_grad():
        if prev_head is None:
            head.weight.zero_()
            head.bias.zero_()
        else:
            head.weight.copy_(prev_head.weight[parents])
            head.bias.copy_(prev_head.bias[parents])
    return head


def fine_tune_encoder(encoder, texts, Y, tree, *, loss="squared_hinge", batch_size=32,
                      epochs=1, max_steps=None, learning_rate=5e-5, beam_size=10,
                      row_weights=None, probe_embeddings=None, node_offsets=None, rng,
                      device="cpu", verbose=0):
    """Fine-tune ``encoder`` in place, level by level; return the history.

    Parameters
    ----------
    encoder : sentence_transformers.SentenceTransformer
        The encoder, already on ``device`` and with its ``max_seq_length`` set.
    texts : list of str
    Y : sparse matrix of shape (n_rows, n_labels)
        Label relevance (nonzero = relevant).
    tree : LabelTree
        The (preliminary) label tree whose levels are the tasks.
    loss : {"squared_hinge", "bce"}
        Per-candidate loss on the head's scores.
    row_weights : ndarray of shape (n_rows,) or None
        Per-row loss weights (rows of weight 0 are never drawn).
    probe_embeddings : ndarray of shape (n_rows, dim) or None
        The frozen encoder's embeddings of ``texts``. When given, every level's
        head starts from a linear probe fitted on them (:func:`probe_heads`)
        instead of from zero or its parents.
    node_offsets : callable or None
        ``node_offsets(level, rows)`` -> array of shape (len(rows), n_nodes of
        the level), added to the head's scores (probe included): e.g. the
        margins of a TF-IDF model, so that the encoder learns what it misses.
    rng : numpy.random.RandomState
        Draws the batches (torch's own seed is set by the caller).
    verbose : int
        A progress bar per level when truthy (see ``skxmr._progress``).

    Returns
    -------
    history : list of dict
        Per level trained (levels of one node are skipped): ``level``,
        ``n_nodes``, ``steps``, ``loss_start`` (mean of the first tenth of the
        steps) and ``loss_end`` (of the last tenth).
    """
    import torch

    rows = np.arange(len(texts)) if row_weights is None else np.flatnonzero(row_weights)
    weights = None if row_weights is None else torch.as_tensor(
        row_weights, dtype=torch.float32)
    targets = level_targets(Y, tree)
    dim = embedding_dimension(encoder)
    # A level of one node (a top level holding every label) ranks nothing: it would
    # only pull all embeddings towards one direction. Its budget goes to the others.
    levels = [t for t in range(1, tree.n_levels + 1) if tree.level_sizes[t - 1] > 1]
    steps = steps_per_level(rows.size, len(levels), batch_size, epochs, max_steps)
    probes = {} if probe_embeddings is None else probe_heads(
        probe_embeddings, targets, tree, levels, loss=loss, beam_size=beam_size,
        row_weights=row_weights, node_offsets=node_offsets, rng=rng, device=device)
    history = []
    prev_head = None
    encoder.train()
    for t in levels:
        n_nodes = int(tree.level_sizes[t - 1])
        parents = torch.as_tensor(tree.parents(t), device=device)
        head = _initial_head(prev_head, parents, dim, n_nodes, device)
        if t in probes:
            head.load_state_dict(probes[t].state_dict())
        optimizer = torch.optim.AdamW([
            {"params": encoder.parameters(), "lr": learning_rate},
            {"params": head.parameters(), "lr": learning_rate * HEAD_LR_FACTOR},
        ], weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 1.0 - step / steps)
        bar = progress(total=steps, desc=f"fine-tune level {t}/{tree.n_levels}",
                       unit="step", verbose=verbose)
        losses = []
        for batch in _batches(rows, batch_size, steps, rng):
            features = _to_device(encoder.preprocess([texts[i] for i in batch]), device)
            embedding = encoder(features)["sentence_embedding"]
            value = _batch_loss(head, embedding, batch, t, targets, prev_head, parents,
                                loss=loss, beam_size=beam_size,
                                node_offsets=node_offsets, weights=weights)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(value.detach()))
            bar.update(1)
        bar.close()
        tenth = max(1, len(losses) // 10)
        history.append({"level": t, "n_nodes": n_nodes, "steps": steps,
                        "loss_start": float(np.mean(losses[:tenth])),
                        "loss_end": float(np.mean(losses[-tenth:]))})
        prev_head = head.eval()
        for p in prev_head.parameters():
            p.requires_grad_(False)
    encoder.eval()
    return history
