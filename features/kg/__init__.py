"""Conversation knowledge graph (K-DCN section III-A): construction (``features.kg.graph``) and
GCN + TransE joint pretraining (``features.kg.pretrain``).

Kept import-free so that ``python -m features.kg.graph`` / ``-m features.kg.pretrain`` run cleanly;
import from the submodules.
"""
