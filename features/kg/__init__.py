"""Conversation knowledge graph (K-DCN section III-A): construction (``graph``) and GCN + TransE
joint pretraining (``pretrain``)."""
from features.kg.graph import CKG, GraphParams, build_ckg  # noqa: F401
