"""Conversation knowledge graph (K-DCN section III-A).

* ``features.kg.graph``: ``build_ckg(corpus, GraphParams) -> CKG`` (construction, vocabularies,
  ``CKG.save/load/stats``; CLI ``python -m features.kg.graph stats|build``);
* ``features.kg.pretrain``: ``pretrain(ckg, PretrainParams) -> PretrainResult`` (GCN + TransE,
  sampled neighbours), ``save_embeddings``, ``load_entity_embeddings``, and
  ``build_and_pretrain(corpus, out_dir, CKGParams)``, the one call of the KF feature kinds
  (``features.extractors.knowledge``: ``user_state``, ``dialogue_keywords``, ``load_pretrained``).

Kept import-free so that ``python -m features.kg.graph`` / ``-m features.kg.pretrain`` run cleanly;
import from the submodules.
"""
