"""The torch modules behind the neural predictors (imported only when one is fitted).

Graph layers come from PyTorch Geometric: GIN (Xu et al., "How Powerful are Graph
Neural Networks?", ICLR 2019) or GCN (Kipf & Welling, ICLR 2017) convolutions, pooling
and dense-batch helpers; no message passing is written by hand here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch_geometric.nn import GCNConv, GINConv, global_mean_pool
from torch_geometric.utils import to_dense_adj, to_dense_batch


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """``layers`` hidden Linear-ReLU(-Dropout) blocks of width ``hidden``, then Linear to ``out_dim``."""
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU()]
        if dropout > 0:
            blocks.append(nn.Dropout(dropout))
        width = hidden
    blocks.append(nn.Linear(width, out_dim))
    return nn.Sequential(*blocks)


class MLPRegressorNet(nn.Module):
    """A scalar regressor on feature vectors.

    Shapes:
        ``(B, in_dim) -> (B,)``.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = mlp(in_dim, hidden, layers, 1, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)


class GraphEncoder(nn.Module):
    """Node embeddings from a stack of PyG graph convolutions.

    Args:
        in_dim: Node feature size (number of node types).
        hidden: Width of the hidden layers.
        out_dim: Size of the output node embeddings.
        layers: Number of convolutions (at least 1); ReLU between them, none after the last.
        conv: ``"gin"`` (GINConv with a 2-layer MLP) or ``"gcn"`` (GCNConv).

    Shapes:
        ``x (num_nodes, in_dim), edge_index (2, E) -> (num_nodes, out_dim)``.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int, conv: str) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        self.convs = nn.ModuleList()
        for a, b in zip(dims[:-1], dims[1:]):
            if conv == "gin":
                self.convs.append(GINConv(nn.Sequential(nn.Linear(a, hidden), nn.ReLU(), nn.Linear(hidden, b)), train_eps=True))
            else:
                self.convs.append(GCNConv(a, b))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = torch.relu(x)
        return x


class GNNRegressorNet(nn.Module):
    """Graph convolutions, mean pooling, an MLP head: one scalar per graph.

    Shapes:
        A PyG batch of ``B`` graphs ``-> (B,)``.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, conv: str, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = GraphEncoder(in_dim, hidden, hidden, layers, conv)
        self.head = mlp(hidden, hidden, 1, 1, dropout)

    def forward(self, data: Any) -> torch.Tensor:
        z = self.encoder(data.x, data.edge_index)
        return self.head(global_mean_pool(z, data.batch)).squeeze(-1)


class GraphAutoEncoderNet(nn.Module):
    """Graph auto-encoder with a regression head (Li et al., "Neural Architecture Search via
    Proxy Validation", TPAMI 2022; GAE of Kipf & Welling, 2016).

    The encoder maps every node to a ``latent``-dim embedding ``Z``; the decoder
    reconstructs the node types with a linear softmax classifier on ``Z`` and the
    (undirected) adjacency as ``sigmoid(Z Z^T)``; the architecture embedding ``g`` is the
    mean of ``Z`` over the graph's nodes, and the head regresses the target from it.

    Args:
        in_dim: Node feature size.
        hidden: Width of the graph layers and the head.
        latent: Size of ``Z`` and ``g``.
        layers: Graph convolutions.
        conv: ``"gin"`` or ``"gcn"``.
        num_types: Node types to reconstruct.
        max_nodes: Most nodes in a graph (for the dense adjacency).

    Shapes:
        A PyG batch of ``B`` graphs with ``num_nodes`` nodes in all: ``encode`` gives
        ``(num_nodes, latent)``, ``embed`` ``(B, latent)``, ``regress`` ``(B,)``.
    """

    def __init__(
        self, in_dim: int, hidden: int, latent: int, layers: int, conv: str, num_types: int, max_nodes: int
    ) -> None:
        super().__init__()
        self.max_nodes = max_nodes
        self.encoder = GraphEncoder(in_dim, hidden, latent, layers, conv)
        self.type_decoder = nn.Linear(latent, num_types)
        self.head = mlp(latent, hidden, 1, 1)

    def encode(self, data: Any) -> torch.Tensor:
        return self.encoder(data.x, data.edge_index)

    def embed(self, z: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return global_mean_pool(z, batch)

    def regress(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.head(embedding).squeeze(-1)

    def reconstruction_loss(self, z: torch.Tensor, data: Any) -> torch.Tensor:
        """Cross-entropy of the node types plus binary cross-entropy of the adjacency.

        The adjacency term averages over the ordered pairs of distinct nodes of each graph.
        """
        type_loss = nn.functional.cross_entropy(self.type_decoder(z), data.node_type)
        dense_z, mask = to_dense_batch(z, data.batch, max_num_nodes=self.max_nodes)
        adj = to_dense_adj(data.edge_index, data.batch, max_num_nodes=self.max_nodes).clamp(max=1.0)
        logits = dense_z @ dense_z.transpose(1, 2)
        pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
        pair_mask &= ~torch.eye(self.max_nodes, dtype=torch.bool, device=z.device).unsqueeze(0)
        adj_loss = nn.functional.binary_cross_entropy_with_logits(logits[pair_mask], adj[pair_mask])
        return type_loss + adj_loss
