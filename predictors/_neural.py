"""Neural predictors: the BANANAS-style MLP ensemble, a GNN regressor and the GAE estimator.

torch and PyTorch Geometric are imported when a model is fitted or used, so importing
:mod:`predictors` stays cheap.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from evonas.config import MAX_ARCHS, MAX_BATCH_SIZE, MAX_COUNT
from evonas.spaces import Arch, GraphSpace, SearchSpace
from predictors._base import (
    MAX_DEPTH,
    MAX_MODELS,
    MAX_WIDTH,
    ArchPredictor,
    SpaceLike,
    check_choice,
    check_int,
    check_number,
    check_seed,
    float32_resolution,
)
from predictors._features import FeatureMixin
from predictors._zc_scorer import ZeroCostScorer

if TYPE_CHECKING:
    import torch

    from predictors._nets import GraphAutoEncoderNet, MLPRegressorNet

_CONVS = ("gin", "gcn")
_PRETRAINED: dict[tuple[Any, ...], Any] = {}
_PRETRAINED_MAX = 16


class _TorchTrainingParams:
    """Validation of the hyper-parameters every neural predictor has."""

    epochs: int
    lr: float
    weight_decay: float
    batch_size: int
    val_fraction: float
    patience: int
    random_state: int

    def _check_training_params(self) -> None:
        check_int(self.epochs, "epochs", 1, MAX_COUNT, owner=self)
        check_number(self.lr, "lr", 0.0, low_open=True, owner=self)
        check_number(self.weight_decay, "weight_decay", 0.0, owner=self)
        check_int(self.batch_size, "batch_size", 1, MAX_BATCH_SIZE, owner=self)
        check_number(self.val_fraction, "val_fraction", 0.0, 0.5, owner=self)
        check_int(self.patience, "patience", 1, MAX_COUNT, owner=self)
        check_seed(self.random_state, owner=self)


def _graphs(archs: Sequence[Arch], space: SearchSpace) -> list[Any]:
    """PyG graphs of ``archs`` for the graph models.

    Edges of ``none`` nodes are dropped (no data flows through a zero op) and the rest
    made undirected, so messages flow both ways along the data paths.
    """
    from torch_geometric.transforms import ToUndirected

    from predictors._encodings import to_pyg

    undirected = ToUndirected()
    return [undirected(g) for g in to_pyg(archs, space, drop_absent=True)]


def _collate(graphs: list[Any], positions: Any) -> Any:
    """A PyG ``Batch`` of the graphs at ``positions``."""
    from torch_geometric.data import Batch

    return Batch.from_data_list([graphs[int(i)] for i in positions])


_FLOAT64: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _float64(module: Any) -> Any:
    """A float64 copy of a fitted module (made once per module), for predictions.

    float32 kernels sum in an order that depends on how many rows a call holds, so an
    architecture's prediction would move in its last bits with the other architectures of
    the batch; in float64 those differences stay far below float32 resolution, and a
    prediction rounded to float32 is the same in any batch.
    """
    copy = _FLOAT64.get(module)
    if copy is None:
        import copy as _copy

        copy = _copy.deepcopy(module).double().eval()
        _FLOAT64[module] = copy
    return copy


def _as_float32(out: Any) -> np.ndarray:
    """A float64 prediction tensor rounded to float32 precision, as a float64 array."""
    return float32_resolution(out.numpy())


def _double_batch(batch: Any) -> Any:
    batch.x = batch.x.double()
    return batch


def _mlp_batch_mse(net: MLPRegressorNet, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.mean((net(x[idx]) - y[idx]) ** 2)


def _mlp_mse(net: MLPRegressorNet, x: torch.Tensor, y: torch.Tensor) -> float:
    import torch

    return float(torch.mean((net(x) - y) ** 2))


class MLPEnsemblePredictor(FeatureMixin, _TorchTrainingParams, ArchPredictor):
    """An ensemble of MLPs on a vector encoding; mean and spread of their predictions.

    With the path encoding this is the neural predictor of BANANAS (White et al.,
    "BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture
    Search", AAAI 2021): independently initialised networks whose disagreement is the
    uncertainty. Each network is trained with MSE on standardised targets and early
    stopping on a held-out slice of the architectures.

    Args:
        encoding: Registered encoding (``path``, ``adjacency_one_hot``, ``one_hot``).
        n_models: Networks in the ensemble.
        hidden: Width of the hidden layers.
        layers: Number of hidden layers.
        dropout: Dropout after every hidden layer.
        epochs: Most training epochs.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: Architectures per step.
        val_fraction: Share of the labelled architectures held out for early stopping
            (0, or a slice of fewer than 5 architectures: no early stopping).
        patience: Epochs without held-out improvement before stopping.
        haap: Add HAAP's homogeneous representations to the training rows (needs
            ``adjacency_one_hot``).
        haap_samples: Extra representations per architecture (``None``: all).
        zero_cost: Zero-cost proxies appended as features.
        scorer: Computes the zero-cost features (``None``: default scorer).
        random_state: Seed of initialisation, batch order and the held-out split.
        space: Search space of the architectures: a registered name or a space value.
    """

    has_uncertainty = True

    def __init__(
        self,
        encoding: str = "path",
        n_models: int = 5,
        hidden: int = 64,
        layers: int = 3,
        dropout: float = 0.0,
        epochs: int = 200,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        patience: int = 30,
        haap: bool = False,
        haap_samples: int | None = None,
        zero_cost: Sequence[str] = (),
        scorer: ZeroCostScorer | None = None,
        random_state: int = 0,
        space: SpaceLike = "nb201",
    ) -> None:
        self.encoding = encoding
        self.n_models = n_models
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.haap = haap
        self.haap_samples = haap_samples
        self.zero_cost = zero_cost
        self.scorer = scorer
        self.random_state = random_state
        self.space = space

    def _check_params(self, space: SearchSpace) -> None:
        self._check_training_params()
        check_int(self.n_models, "n_models", 1, MAX_MODELS, owner=self)
        check_int(self.hidden, "hidden", 1, MAX_WIDTH, owner=self)
        check_int(self.layers, "layers", 0, MAX_DEPTH, owner=self)
        check_number(self.dropout, "dropout", 0.0, 0.95, owner=self)
        self._check_feature_params(space)

    def fit(self, archs: Sequence[Any], y: Any) -> MLPEnsemblePredictor:
        """Train the ensemble on labelled architectures and return ``self``."""
        import torch

        from predictors._nets import MLPRegressorNet
        from predictors._training import holdout_split, seeded_torch, train_early_stopping

        checked, targets = self._validate_fit(archs, y)
        space = self.space_
        ys = self._set_target_scale(targets)
        rng = np.random.default_rng(self.random_state)
        train_pos, val_pos = holdout_split(len(checked), self.val_fraction, rng)
        x_np, y_np = self._fit_rows([checked[i] for i in train_pos], ys[train_pos], space, rng)
        x_train = torch.as_tensor(x_np, dtype=torch.float32)
        y_train = torch.as_tensor(y_np, dtype=torch.float32)
        x_val = torch.as_tensor(self._rows([checked[i] for i in val_pos], space), dtype=torch.float32)
        y_val = torch.as_tensor(ys[val_pos], dtype=torch.float32)
        seeds = rng.integers(0, 2**31 - 1, size=self.n_models)
        self.models_: list[MLPRegressorNet] = []
        self.n_epochs_: list[int] = []
        for seed in seeds:
            with seeded_torch(int(seed)) as gen:
                net = MLPRegressorNet(x_train.shape[1], self.hidden, self.layers, self.dropout)
                epochs_run = train_early_stopping(
                    net, functools.partial(_mlp_batch_mse, net, x_train, y_train), x_train.shape[0],
                    epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                    generator=gen, val_loss=functools.partial(_mlp_mse, net, x_val, y_val) if len(val_pos) else None,
                    patience=self.patience,
                )
            self.models_.append(net)
            self.n_epochs_.append(epochs_run)
        return self

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        x = torch.as_tensor(self._rows(archs, self.space_), dtype=torch.float64)
        with torch.no_grad():
            preds = np.stack([_as_float32(_float64(net)(x)) for net in self.models_])
        return self._unscale(preds.mean(axis=0), preds.std(axis=0) if return_std else None)


class GNNPredictor(_TorchTrainingParams, ArchPredictor):
    """A supervised graph neural network on the op-node graph (PyG GIN or GCN).

    Graph convolutions (GIN: Xu et al., ICLR 2019; GCN: Kipf & Welling, ICLR 2017, the
    form used as a NAS predictor by Wen et al., "Neural Predictor for Neural Architecture
    Search", ECCV 2020), mean pooling and an MLP head, trained with MSE on standardised
    targets and early stopping.

    Args:
        conv: ``"gin"`` or ``"gcn"``.
        hidden: Width of the graph layers and the head.
        layers: Number of graph convolutions.
        dropout: Dropout in the head.
        epochs: Most training epochs.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: Graphs per step.
        val_fraction: Share held out for early stopping (0, or a slice of fewer than 5
            architectures: no early stopping).
        patience: Epochs without held-out improvement before stopping.
        random_state: Seed of initialisation, batch order and the held-out split.
        space: Search space of the architectures: a registered name or a space value.
    """

    def __init__(
        self,
        conv: str = "gin",
        hidden: int = 64,
        layers: int = 3,
        dropout: float = 0.0,
        epochs: int = 200,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        patience: int = 30,
        random_state: int = 0,
        space: SpaceLike = "nb201",
    ) -> None:
        self.conv = conv
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.random_state = random_state
        self.space = space

    def required_capabilities(self) -> frozenset[str]:
        """The op-node graph of every architecture (``graph``)."""
        return frozenset({"graph"})

    def _check_params(self, space: SearchSpace) -> None:
        self._check_training_params()
        check_choice(self.conv, "conv", _CONVS, owner=self)
        check_int(self.hidden, "hidden", 1, MAX_WIDTH, owner=self)
        check_int(self.layers, "layers", 1, MAX_DEPTH, owner=self)
        check_number(self.dropout, "dropout", 0.0, 0.95, owner=self)

    def fit(self, archs: Sequence[Any], y: Any) -> GNNPredictor:
        """Train the network on labelled architectures and return ``self``."""
        import torch

        from predictors._nets import GNNRegressorNet
        from predictors._training import holdout_split, seeded_torch, train_early_stopping

        checked, targets = self._validate_fit(archs, y)
        ys = torch.as_tensor(self._set_target_scale(targets), dtype=torch.float32)
        graphs = _graphs(checked, self.space_)
        rng = np.random.default_rng(self.random_state)
        train_pos, val_pos = holdout_split(len(checked), self.val_fraction, rng)
        train_pos_t = torch.as_tensor(train_pos)
        val_batch = _collate(graphs, val_pos) if len(val_pos) else None
        y_val = ys[torch.as_tensor(val_pos)]
        with seeded_torch(int(rng.integers(0, 2**31 - 1))) as gen:
            net = GNNRegressorNet(graphs[0].num_node_features, self.hidden, self.layers, self.conv, self.dropout)

            def batch_loss(idx: torch.Tensor) -> torch.Tensor:
                pos = train_pos_t[idx]
                return torch.mean((net(_collate(graphs, pos)) - ys[pos]) ** 2)

            def held_out_loss() -> float:
                return float(torch.mean((net(val_batch) - y_val) ** 2))

            val_loss = held_out_loss if val_batch is not None else None
            self.n_epochs_ = train_early_stopping(
                net, batch_loss, len(train_pos), epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                weight_decay=self.weight_decay, generator=gen, val_loss=val_loss, patience=self.patience,
            )
        self.model_ = net
        return self

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, None]:
        import torch

        graphs = _graphs(archs, self.space_)
        with torch.no_grad():
            z = _as_float32(_float64(self.model_)(_double_batch(_collate(graphs, range(len(graphs))))))
        return self._unscale(z)[0], None


class GAEPredictor(_TorchTrainingParams, ArchPredictor):
    """Proxy-validation-loss estimator: a graph auto-encoder with a regression head.

    Li et al., "Neural Architecture Search via Proxy Validation", TPAMI 2022. A PyG GIN
    (or GCN) encoder maps the op-node graph to per-node latents; the decoder reconstructs
    the node types (softmax, cross-entropy) and the adjacency (sigmoid of inner products,
    binary cross-entropy). The graph drops the edges of ``none`` nodes, so the adjacency to
    reconstruct says which ops are connected. The auto-encoder is first pre-trained
    without labels on architectures sampled from the space (pre-training is cached per
    process and seed), then trained jointly with a regression head on the labelled ones
    with loss ``recon_weight * reconstruction + MSE``. With ``semi_supervised`` (and
    pre-training) the joint stage is semi-supervised as in the paper: every step's
    reconstruction term also covers a batch of the unlabelled architectures, which keeps
    the embedding organised by structure while the few labels shape the head. The target
    is typically a (proxy) validation loss, but any scalar works: targets are standardised.

    Args:
        conv: ``"gin"`` or ``"gcn"``.
        hidden: Width of the graph layers and the head.
        latent: Size of the node latents and of the architecture embedding.
        layers: Number of graph convolutions.
        pretrain: Pre-train the auto-encoder on unlabelled architectures first.
        pretrain_archs: Unlabelled architectures sampled (seeded) for pre-training.
        pretrain_epochs: Epochs of pre-training.
        recon_weight: Weight of the reconstruction loss in the joint stage.
        semi_supervised: With ``pretrain``, also reconstruct a batch of the unlabelled
            architectures at every joint step (ignored without pre-training).
        epochs: Most epochs of the joint stage.
        lr: Adam learning rate (both stages).
        weight_decay: Adam weight decay.
        batch_size: Graphs per step (both stages).
        val_fraction: Share held out for early stopping of the joint stage (0, or a slice
            of fewer than 5 architectures: no early stopping).
        patience: Epochs without held-out improvement before stopping.
        random_state: Seed of sampling, initialisation, batch order and split.
        space: Search space of the architectures: a registered name or a space value.
    """

    def __init__(
        self,
        conv: str = "gin",
        hidden: int = 64,
        latent: int = 16,
        layers: int = 3,
        pretrain: bool = True,
        pretrain_archs: int = 500,
        pretrain_epochs: int = 20,
        recon_weight: float = 2.0,
        semi_supervised: bool = True,
        epochs: int = 200,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        patience: int = 30,
        random_state: int = 0,
        space: SpaceLike = "nb201",
    ) -> None:
        self.conv = conv
        self.hidden = hidden
        self.latent = latent
        self.layers = layers
        self.pretrain = pretrain
        self.pretrain_archs = pretrain_archs
        self.pretrain_epochs = pretrain_epochs
        self.recon_weight = recon_weight
        self.semi_supervised = semi_supervised
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.random_state = random_state
        self.space = space

    def required_capabilities(self) -> frozenset[str]:
        """The op-node graph of every architecture (``graph``)."""
        return frozenset({"graph"})

    def _check_params(self, space: SearchSpace) -> None:
        self._check_training_params()
        check_choice(self.conv, "conv", _CONVS, owner=self)
        check_int(self.hidden, "hidden", 1, MAX_WIDTH, owner=self)
        check_int(self.latent, "latent", 1, MAX_WIDTH, owner=self)
        check_int(self.layers, "layers", 1, MAX_DEPTH, owner=self)
        check_choice(self.pretrain, "pretrain", (True, False), owner=self)
        check_int(self.pretrain_archs, "pretrain_archs", 1, MAX_ARCHS, owner=self)
        check_int(self.pretrain_epochs, "pretrain_epochs", 1, MAX_COUNT, owner=self)
        check_number(self.recon_weight, "recon_weight", 0.0, owner=self)
        check_choice(self.semi_supervised, "semi_supervised", (True, False), owner=self)

    def fit(self, archs: Sequence[Any], y: Any) -> GAEPredictor:
        """Pre-train (optionally), then train jointly on labelled architectures; return ``self``."""
        import torch

        from predictors._nets import GraphAutoEncoderNet
        from predictors._training import holdout_split, seeded_torch, train_early_stopping

        checked, targets = self._validate_fit(archs, y)
        space = self.space_
        graph_space = cast(GraphSpace, space)  # fit checked the 'graph' capability
        ys = torch.as_tensor(self._set_target_scale(targets), dtype=torch.float32)
        graphs = _graphs(checked, space)
        rng = np.random.default_rng(self.random_state)
        unlabelled = [space.sample(rng) for _ in range(self.pretrain_archs)] if self.pretrain else []
        # Drawn before anything that depends on the labelled data: the pre-training (and its
        # cache entry) is then a function of the hyper-parameters and random_state alone.
        seed = int(rng.integers(0, 2**31 - 1))
        train_pos, val_pos = holdout_split(len(checked), self.val_fraction, rng)
        train_pos_t = torch.as_tensor(train_pos)
        first = graph_space.graph(checked[0])
        with seeded_torch(seed) as gen:
            net = GraphAutoEncoderNet(
                graphs[0].num_node_features, self.hidden, self.latent, self.layers, self.conv, len(first.type_names),
                max_nodes=first.num_nodes,
            )
            pool = _graphs(unlabelled, space) if self.pretrain else []
            if self.pretrain:
                self._pretrain(net, pool, gen, space)
            # The joint stage draws from its own generator, so its batches are the same
            # whether the pre-trained weights were computed or found in the cache.
            joint_gen = torch.Generator().manual_seed(seed + 2)
            semi = bool(self.semi_supervised and pool)

            def joint_loss(idx: torch.Tensor) -> torch.Tensor:
                pos = train_pos_t[idx]
                batch = _collate(graphs, pos)
                z = net.encode(batch)
                mse = torch.mean((net.regress(net.embed(z, batch.batch)) - ys[pos]) ** 2)
                recon = net.reconstruction_loss(z, batch)
                if semi:
                    extra = _collate(pool, torch.randint(len(pool), (self.batch_size,), generator=joint_gen))
                    recon = (recon + net.reconstruction_loss(net.encode(extra), extra)) / 2
                return self.recon_weight * recon + mse

            val_batch: Any = _collate(graphs, val_pos) if len(val_pos) else None
            y_val = ys[torch.as_tensor(val_pos)]

            def held_out_loss() -> float:
                z = net.encode(val_batch)
                return float(torch.mean((net.regress(net.embed(z, val_batch.batch)) - y_val) ** 2))

            val_loss = held_out_loss if val_batch is not None else None
            self.n_epochs_ = train_early_stopping(
                net, joint_loss, len(train_pos), epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                weight_decay=self.weight_decay, generator=joint_gen, val_loss=val_loss, patience=self.patience,
            )
        self.model_ = net
        return self

    def _pretrain(self, net: GraphAutoEncoderNet, pool: list[Any], gen: torch.Generator, space: SearchSpace) -> None:
        """Unsupervised pre-training on the graphs ``pool`` (reconstruction only), cached per process.

        Pre-training depends only on the settings below and the seed, not on the labelled
        data, so fits that share them (e.g. the training sizes of one harness trial) reuse it.
        """
        import copy

        from predictors._training import train_early_stopping

        key = (space, self.conv, self.hidden, self.latent, self.layers, self.pretrain_archs,
               self.pretrain_epochs, self.lr, self.weight_decay, self.batch_size, self.random_state)
        state = _PRETRAINED.get(key)
        if state is not None:
            net.load_state_dict(state)
            return

        def recon_loss(idx: torch.Tensor) -> torch.Tensor:
            batch = _collate(pool, idx)
            return net.reconstruction_loss(net.encode(batch), batch)

        train_early_stopping(
            net, recon_loss, len(pool), epochs=self.pretrain_epochs, batch_size=self.batch_size,
            lr=self.lr, weight_decay=self.weight_decay, generator=gen,
        )
        if len(_PRETRAINED) >= _PRETRAINED_MAX:
            _PRETRAINED.pop(next(iter(_PRETRAINED)))
        _PRETRAINED[key] = copy.deepcopy(net.state_dict())

    def transform(self, archs: Sequence[Any]) -> np.ndarray:
        """The learned architecture embeddings (mean of the node latents).

        Shapes:
            ``(len(archs), latent)``.
        """
        import torch

        checked = self._validate_predict(archs)
        if not checked:
            return np.zeros((0, self.latent))
        batch = _double_batch(_collate(_graphs(checked, self.space_), range(len(checked))))
        model = _float64(self.model_)
        with torch.no_grad():
            return _as_float32(model.embed(model.encode(batch), batch.batch))

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, None]:
        import torch

        batch = _double_batch(_collate(_graphs(archs, self.space_), range(len(archs))))
        model = _float64(self.model_)
        with torch.no_grad():
            out = _as_float32(model.regress(model.embed(model.encode(batch), batch.batch)))
        return self._unscale(out)[0], None
