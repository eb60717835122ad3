"""The in-memory corpus: E-ConvRec-format tables as pandas DataFrames.

File format: ``docs/data_format.md``. Every table is in long form so that feature extractors can
work with joins and group-bys instead of per-row Python loops.

CONTRACT (other modules rely on these names and columns):

* ``users``       user_id, then one column per profile field (lists stay Python lists; missing = None/NaN)
* ``items``       item_id, category, shop_id, title, price (float64, NaN when null)
* ``item_attrs``  item_id, name, value        -- items.attributes in long form, values as str
* ``sessions``    session_id, user_id, shop_id
* ``turns``       session_id, turn_idx, role, text, intent, recommend, pref_annotated (bool: the turn
                  carried a ``preference_words`` list, possibly empty)
* ``turn_items``  session_id, turn_idx, item_id                -- items linked (mentioned) in a turn
* ``pref_words``  session_id, turn_idx, text, type             -- preference-word annotations
* ``behaviors``   user_id, type, item_id, ts
* ``samples``     sample_id, session_id, user_id, turn, label_item, split ("train"|"valid"|"test")
* ``candidates``  sample_id, position, item_id, label (int8; 1 for the label item)

``candidate_rows()`` is the row set every feature is computed for.

Loading
-------
:func:`load_corpus` (a directory of ``*.jsonl`` or ``*.parquet`` tables) and
:meth:`Corpus.from_records` (Python dicts, e.g. the records of a scoring request) share one
validation / normalisation path: every record is checked against its pydantic record model
(``records``: JSON, UTF-8, field presence and types, enum values, candidate and label sanity),
then the references between records (unknown and duplicate ids, the sample's turn in its session)
are resolved in one pass over the tables (``validate``). Problems carry the file, the 1-based
line (record / row) number, the record id, the field (a dotted path such as ``turns[3].items[0]``) and a reason. With ``policy="strict"``
any problem raises :class:`CorpusError`; with ``policy="skip"`` offending records, and the
records that depend on them (a session of a dropped user, the samples of a dropped session ...),
are dropped and listed in ``corpus.meta["dropped"]`` (and written to ``report_path`` as JSON).

Column dtypes: id and text columns use pandas' ``str`` dtype (NaN for missing), ``turn_idx``,
``turn`` and ``ts`` int64, ``position`` int32, ``label`` int8, ``recommend`` the nullable
``boolean`` dtype, ``pref_annotated`` bool, ``price`` and the numeric profile fields float64, the
list profile field and unknown profile fields object (raw JSON values). The 20 known profile
fields (:data:`PROFILE_FIELDS`) are always columns, in that order; unknown ones follow, sorted.

Splits: a sample's ``split`` is taken from the file when given. Samples without one get the
split of their session if another sample of it has one, otherwise one drawn per session from a
seeded hash of the session id (8:1:1, independent of file order and of other sessions), so a
session never spans two splits.

Modules: ``records`` (the pydantic record models, problems and errors), ``validate`` (records ->
tables, the one build path), ``load`` (reading JSON Lines / parquet), ``frame`` (:class:`Corpus`),
``write`` (saving as JSON Lines).
"""

from core.corpus.frame import TABLE_NAMES, Corpus
from core.corpus.load import REQUIRED_TABLES, load_corpus
from core.corpus.records import (BEHAVIOR_TYPES, INTENTS, LIST_PROFILE_FIELDS, MAX_LISTED_PROBLEMS,
                                 NUMERIC_PROFILE_FIELDS, PREF_TYPES, PROFILE_FIELDS, ROLES, SPLIT_RATIOS, SPLITS,
                                 CorpusError, Problem)
from core.corpus.validate import SOURCE_TABLES, KnownItems, KnownRecords, split_for_session

__all__ = ["BEHAVIOR_TYPES", "INTENTS", "LIST_PROFILE_FIELDS", "MAX_LISTED_PROBLEMS", "NUMERIC_PROFILE_FIELDS",
           "PREF_TYPES", "PROFILE_FIELDS", "REQUIRED_TABLES", "ROLES", "SOURCE_TABLES", "SPLITS", "SPLIT_RATIOS",
           "TABLE_NAMES", "Corpus", "CorpusError", "KnownItems", "KnownRecords", "Problem", "load_corpus",
           "split_for_session"]
