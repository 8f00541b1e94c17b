"""XGBoost's exact per-feature contributions (TreeSHAP), evaluated from tables built per model.

XGBoost's ``pred_contribs=True`` is path-dependent TreeSHAP. For one tree it is a sum over
leaves: a leaf with value ``v`` whose path splits on the distinct features ``1..d`` plays a
d-player game ``g(S) = v * prod(o_j for j in S) * prod(z_j for j not in S)``, where ``z_j`` is
the share of training cover that follows the path at the splits on ``j`` and ``o_j`` is 1 if
the row takes the path at every split on ``j``, else 0. The leaf adds the Shapley values of
that game to its features.

A row enters only through the ``o_j``, which are fixed by the directions the row takes at the
splits on the path. So a subtree, together with the splits above it, contributes a function
of at most ``2**k`` cases, ``k`` being the number of those splits. Each tree is cut into
such groups of at most :data:`GROUP_SPLITS` splits (a leaf deeper than that is a group of
its own, up to :data:`MAX_PATH_SPLITS`), every case of every group is worked out once when
the model is loaded, and scoring a row is one comparison per split, one table row per group
and a sum per feature. XGBoost instead walks every leaf of every tree for every
row, with work quadratic in depth. For the default model (152 trees of depth 4) and 1,000
rows: 5 ms on one core, against XGBoost's 112 ms on one core and 60 ms on two
(benchmarks/contributions.py, docs/performance.md).

The numbers are XGBoost's to float32 rounding (tested against ``pred_contribs``, and checked
again for each model on first use: :meth:`fraud_assets.core.model.bundle.FraudModel.contributions`).
Models outside what the tables express raise :class:`UnsupportedModel` naming the reason
(a booster other than gbtree, several outputs, categorical splits, vector leaves, a split
with zero cover, no splits at all, a path over :data:`MAX_PATH_SPLITS` splits, tables over
:data:`MAX_TABLE_ENTRIES`), and the caller uses XGBoost's own evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Splits per group: a depth-4 tree is two groups (its root plus either depth-3 subtree), a
# depth-6 tree sixteen. Tables grow as 2**GROUP_SPLITS rows per group.
GROUP_SPLITS = 8
# A single root-to-leaf path is always one group, so deeper trees need longer case numbers.
MAX_PATH_SPLITS = 16
# Table entries (float32) beyond which the model is left to XGBoost: 32 MiB. Lookups in
# larger tables miss the caches: 100 full-grown trees of depth 8 (44 MiB) scored 1,000 rows no
# faster than XGBoost on two cores, 200 of depth 7 (28 MiB) still 2.4 times faster.
MAX_TABLE_ENTRIES = 1 << 23
# Rows are scored in passes of at most this many (slot, row) values, so that a pass's
# temporaries (about 12 bytes per value) stay near 1.5 MB, within a core's cache: passes of
# whole 1,000-row batches took twice as long (docs/performance.md).
_ELEMENTS_PER_PASS = 1 << 17
# Leaves' Shapley values are computed in passes of at most this many float64 values (three
# arrays of that size are alive at once: 96 MiB).
_BUILD_ELEMENTS_PER_PASS = 1 << 22


class UnsupportedModel(ValueError):
    """A model these tables cannot express; the reason is the message."""


@dataclass(frozen=True)
class _Tree:
    left: list[int]
    right: list[int]
    feature: list[int]
    condition: list[float]  # split threshold, or the leaf's value at a leaf
    default_left: list[int]
    cover: list[float]

    @classmethod
    def from_json(cls, tree: dict[str, Any]) -> _Tree:
        if any(tree.get("split_type", ())):
            raise UnsupportedModel("categorical splits")
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise UnsupportedModel("vector leaves")
        return cls(
            left=tree["left_children"],
            right=tree["right_children"],
            feature=tree["split_indices"],
            condition=tree["split_conditions"],
            default_left=tree["default_left"],
            cover=tree["sum_hessian"],
        )

    def is_leaf(self, node: int) -> bool:
        return self.left[node] == -1

    def splits_under(self, node: int) -> list[int]:
        """Split nodes of the subtree rooted at ``node``, in pre-order."""
        if self.is_leaf(node):
            return []
        return [node, *self.splits_under(self.left[node]), *self.splits_under(self.right[node])]

    def leaf_paths(self, node: int, path: tuple[tuple[int, bool], ...]):
        """(leaf, path) under ``node``; a path is (split node, went left) from the root."""
        if self.is_leaf(node):
            yield node, path
        else:
            yield from self.leaf_paths(self.left[node], (*path, (node, True)))
            yield from self.leaf_paths(self.right[node], (*path, (node, False)))


def _shapley_weights(players: int) -> np.ndarray:
    """Weight of a coalition of each size s in a feature's Shapley value: s!(d-1-s)!/d!."""
    d = players
    return np.array([math.factorial(s) * math.factorial(d - 1 - s) / math.factorial(d) for s in range(d)])


def leaf_shapley_values(values: np.ndarray, zero_fractions: np.ndarray) -> np.ndarray:
    """Shapley values of the leaf games, for every combination of the ``o_j``.

    ``values``: (L,) leaf values; ``zero_fractions``: (L, d) the ``z_j`` of L leaves that
    each have d distinct path features. Returns (L, 2**d, d): entry [l, m, k] is feature k's
    value when ``o_j`` is bit j of m. With the other players' factors ``z_j + o_j t`` multiplied
    out as a polynomial in t, coefficient s sums the coalitions of size s.
    """
    leaves, d = zero_fractions.shape
    cases = np.arange(2**d)
    ones = ((cases[:, None] >> np.arange(d)) & 1).astype(np.float64)  # (2**d, d)
    weights = _shapley_weights(d)
    result = np.empty((leaves, 2**d, d))
    for k in range(d):
        coefficients = np.zeros((leaves, 2**d, d))
        coefficients[:, :, 0] = 1.0
        for j in range(d):
            if j != k:
                raised = np.zeros_like(coefficients)
                raised[:, :, 1:] = coefficients[:, :, :-1]
                coefficients *= zero_fractions[:, j, None, None]
                coefficients += raised * ones[None, :, j, None]
        marginal = ones[None, :, k] - zero_fractions[:, k, None]
        result[:, :, k] = values[:, None] * marginal * (coefficients @ weights)
    return result


@dataclass
class _Group:
    splits: list[int]  # global split numbers; bit b of a case is "went left at splits[b]"
    features: list[int]  # the table's columns
    # (2**len(splits), len(features)); allocated once the whole model is known to fit.
    table: np.ndarray | None = None

    @property
    def entries(self) -> int:
        return 2 ** len(self.splits) * len(self.features)


@dataclass
class _PendingLeaf:
    group: _Group
    value: float
    features: list[int]  # distinct path features in order of first use
    zero_fractions: list[float]
    # per feature: (bit in the group's case number, went left) for each split on it
    conditions: list[list[tuple[int, bool]]]


def _tree_groups(
    tree: _Tree, split_number: dict[int, int], pending: dict[int, list[_PendingLeaf]]
) -> list[_Group]:
    """Cut one tree into groups; their leaves are queued in ``pending`` by path width."""
    groups: list[_Group] = []

    def visit(node: int, path: tuple[tuple[int, bool], ...]) -> None:
        below = tree.splits_under(node)
        if not below and not path:
            return  # a tree that is one leaf: only the bias, which XGBoost reports itself
        if below and len(path) + len(below) > GROUP_SPLITS:
            visit(tree.left[node], (*path, (node, True)))
            visit(tree.right[node], (*path, (node, False)))
            return
        nodes = [split for split, _ in path] + below
        if len(nodes) > MAX_PATH_SPLITS:
            raise UnsupportedModel(f"a path of {len(nodes)} splits (at most {MAX_PATH_SPLITS})")
        bit_of = {split: bit for bit, split in enumerate(nodes)}
        group = _Group([split_number[split] for split in nodes], sorted({tree.feature[s] for s in nodes}))
        groups.append(group)
        for leaf, leaf_path in tree.leaf_paths(node, path):
            order: list[int] = []
            zero: dict[int, float] = {}
            conditions: dict[int, list[tuple[int, bool]]] = {}
            for position, (split, went_left) in enumerate(leaf_path):
                child = leaf_path[position + 1][0] if position + 1 < len(leaf_path) else leaf
                feature = tree.feature[split]
                if feature not in zero:
                    order.append(feature)
                    zero[feature], conditions[feature] = 1.0, []
                # A feature split on twice along the path is one player: fractions multiply.
                if tree.cover[split] <= 0:
                    # XGBoost's own TreeSHAP fails on these too (refreshed on other data).
                    raise UnsupportedModel("a split with zero cover")
                zero[feature] *= tree.cover[child] / tree.cover[split]
                conditions[feature].append((bit_of[split], went_left))
            pending.setdefault(len(order), []).append(
                _PendingLeaf(
                    group, tree.condition[leaf], order, [zero[f] for f in order], [conditions[f] for f in order]
                )
            )

    visit(0, ())
    return groups


def _fill_tables(pending: dict[int, list[_PendingLeaf]]) -> None:
    """Add every leaf's Shapley values to its group's table, for every case of the group."""
    for width, all_leaves in pending.items():
        step = max(1, _BUILD_ELEMENTS_PER_PASS // (2**width * width))
        for start in range(0, len(all_leaves), step):
            _add_leaves(width, all_leaves[start : start + step])


def _add_leaves(width: int, leaves: list[_PendingLeaf]) -> None:
    shapley = leaf_shapley_values(
        np.array([leaf.value for leaf in leaves]),
        np.array([leaf.zero_fractions for leaf in leaves]),
    )
    for leaf, values in zip(leaves, shapley, strict=True):
        # For every case of the group: which of the leaf's features the row takes the path at.
        cases = np.arange(len(leaf.group.table))
        leaf_case = np.zeros_like(cases)
        for k, conditions in enumerate(leaf.conditions):
            on_path = np.ones(len(cases), dtype=bool)
            for bit, went_left in conditions:
                on_path &= ((cases >> bit) & 1).astype(bool) == went_left
            leaf_case |= on_path.astype(cases.dtype) << k
        for k, feature in enumerate(leaf.features):
            leaf.group.table[:, leaf.group.features.index(feature)] += values[leaf_case, k]


@dataclass(frozen=True)
class TreeShapTables:
    """Per-feature TreeSHAP values of a tree ensemble, without the bias term."""

    num_features: int
    # One entry per split, plus a last one that no row ever takes left: it pads the groups.
    split_feature: np.ndarray  # (N + 1,) intp
    split_threshold: np.ndarray  # (N + 1,) float32
    split_default_left: np.ndarray  # (N + 1,) bool
    # Bit b of a group's case number: the row went left at split group_splits[group, b].
    group_splits: np.ndarray  # (G, B) intp, padded with the last split
    # Every (group, feature of the group) pair is a slot; slots are ordered by feature. A
    # slot's value for a row is table_values[slot_offset + the row's case number in slot_group].
    table_values: np.ndarray  # (entries,) float32: each group's table, column after column
    slot_offset: np.ndarray  # (S, 1) intp
    slot_group: np.ndarray  # (S,) intp
    features_with_slots: np.ndarray  # (K,) intp
    first_slot: np.ndarray  # (K,) intp: where each of those features' slots start

    @classmethod
    def from_xgboost_json(cls, document: dict[str, Any]) -> TreeShapTables:
        """Build from a model saved in XGBoost's JSON format (``Booster.save_raw("json")``)."""
        learner = document["learner"]
        booster = learner["gradient_booster"]
        if booster.get("name") != "gbtree":
            raise UnsupportedModel(f"booster {booster.get('name')!r} (only gbtree)")
        parameters = learner["learner_model_param"]
        if int(parameters.get("num_class", "0")) > 1 or int(parameters.get("num_target", "1")) > 1:
            raise UnsupportedModel("more than one output")
        num_features = int(parameters["num_feature"])

        split_features: list[int] = []
        thresholds: list[float] = []
        default_left: list[bool] = []
        groups: list[_Group] = []
        pending: dict[int, list[_PendingLeaf]] = {}
        entries = 0
        for tree_json in booster["model"]["trees"]:
            tree = _Tree.from_json(tree_json)
            nodes = tree.splits_under(0)
            split_number = {node: len(split_features) + position for position, node in enumerate(nodes)}
            tree_groups = _tree_groups(tree, split_number, pending)
            # Checked tree by tree, so a model far too large is refused before most of the work.
            entries += sum(group.entries for group in tree_groups)
            if entries > MAX_TABLE_ENTRIES:
                raise UnsupportedModel(f"tables of over {entries:,} entries (at most {MAX_TABLE_ENTRIES:,})")
            groups.extend(tree_groups)
            split_features += [tree.feature[node] for node in nodes]
            thresholds += [tree.condition[node] for node in nodes]
            default_left += [bool(tree.default_left[node]) for node in nodes]
        if not groups:
            raise UnsupportedModel("no splits")
        for group in groups:
            group.table = np.zeros((2 ** len(group.splits), len(group.features)))
        _fill_tables(pending)
        return cls._pack(num_features, split_features, thresholds, default_left, groups)

    @classmethod
    def _pack(
        cls,
        num_features: int,
        split_features: list[int],
        thresholds: list[float],
        default_left: list[bool],
        groups: list[_Group],
    ) -> TreeShapTables:
        """Lay the groups out as flat arrays for :meth:`shap_values`."""
        never = len(split_features)
        group_splits = np.full((len(groups), max(len(group.splits) for group in groups)), never, dtype=np.intp)
        columns, slots, offset = [], [], 0
        for number, group in enumerate(groups):
            group_splits[number, : len(group.splits)] = group.splits
            for column, feature in enumerate(group.features):
                slots.append((feature, number, offset))
                columns.append(group.table[:, column])
                offset += len(group.table)
        slots.sort()  # by feature, then group: the order in which each feature is summed
        slot_feature = np.array([feature for feature, _, _ in slots])
        present, first = np.unique(slot_feature, return_index=True)
        return cls(
            num_features=num_features,
            split_feature=np.array([*split_features, 0], dtype=np.intp),
            split_threshold=np.array([*thresholds, -np.inf], dtype=np.float32),
            split_default_left=np.array([*default_left, False]),
            group_splits=group_splits,
            table_values=np.concatenate(columns).astype(np.float32),
            slot_offset=np.array([offset for _, _, offset in slots], dtype=np.intp)[:, None],
            slot_group=np.array([group for _, group, _ in slots], dtype=np.intp),
            features_with_slots=present.astype(np.intp),
            first_slot=first.astype(np.intp),
        )

    def shap_values(self, features: np.ndarray) -> np.ndarray:
        """(rows, num_features) contributions to the margin for a float32 feature matrix.

        NaN is a missing value and follows each split's default direction, as in XGBoost.
        A row's values do not depend on the other rows in the call.
        """
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.num_features:
            raise ValueError(f"expected a 2-D matrix with {self.num_features} columns, got {matrix.shape}")
        result = np.zeros((len(matrix), self.num_features), dtype=np.float32)
        step = max(1, _ELEMENTS_PER_PASS // len(self.slot_group))
        for start in range(0, len(matrix), step):
            result[start : start + step] = self._shap_values_of(matrix[start : start + step]).T
        return result

    def _shap_values_of(self, matrix: np.ndarray) -> np.ndarray:
        # Rows last throughout: each step is one vector operation over the whole batch per
        # split, group or slot.
        at_split = np.ascontiguousarray(matrix.T)[self.split_feature]  # (splits + 1, rows)
        went_left = at_split < self.split_threshold[:, None]
        if np.isnan(matrix).any():
            went_left = np.where(np.isnan(at_split), self.split_default_left[:, None], went_left)
        directions = went_left[self.group_splits].view(np.uint8)  # (groups, width, rows)
        case = np.zeros((directions.shape[0], directions.shape[2]), dtype=np.uint16)
        for bit in range(directions.shape[1]):
            case |= directions[:, bit].astype(np.uint16) << bit
        at = np.add(self.slot_offset, case[self.slot_group], dtype=np.intp)
        per_slot = self.table_values[at]  # (slots, rows)
        result = np.zeros((self.num_features, len(matrix)), dtype=np.float32)
        # reduceat adds up each feature's slots in the same order for any number of rows; a
        # plain sum over axis 0 adds row by row for a batch but pairwise for a single row, so
        # a transaction's values would depend on the batch it came in.
        result[self.features_with_slots] = np.add.reduceat(per_slot, self.first_slot, axis=0)
        return result
