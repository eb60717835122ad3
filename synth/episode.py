"""One purchase episode of a session: the exchanges up to the recommendation turn, the purchase and
the turns after it, and the resulting sample with its truth rows.

An episode of ``E`` exchanges has ``r`` blocks before the recommendation exchange and ``n_post``
after it. Block ``e`` is a user block (request, scheduled preferences, feedback, questions) then,
unless it is the last, a staff block (greeting, linking 1-3 items chosen by a noisy reading of the
user, asking about an attribute or the budget, or an acknowledgement). The purchase is
``argmax U + Gumbel(0, TAU)`` over the candidates with ``U = BF + CF + IF`` (``synth.generate``); the IF
block includes the effect of the customer's reactions to shown items (``synth.feedback``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from synth import feedback
from synth.catalogue import MAX_SERIES
from synth.model import MENTION_DECAY, P_MENTION, STAFF_NOISE, TAU, W_MENTION, W_RECENT, W_SIM, mean_overlap
from synth.preferences import Candidates, Preference

if TYPE_CHECKING:
    from synth.simulator import Simulator


class Episode:
    """State of one episode while its turns are written (appended to the session's ``turns``)."""

    def __init__(self, sim: "Simulator", session_id: str, sample_id: str, u: int, k: int, n_exchanges: int,
                 turns: list[dict], e_no: int, exclude: set[int], linked: set[int]):
        self.sim, self.rng, self.d, self.T = sim, sim.rng, sim.d, sim.W.data.dialogue
        self.session_id, self.sample_id = session_id, sample_id
        self.u, self.k, self.n_exchanges, self.e_no = u, k, n_exchanges, e_no
        self.turns, self.exclude, self.linked = turns, exclude, linked
        self.shop, c, _size = sim.C.catalogues[k]
        self.cat = sim.W.cats[c]

    def run(self) -> None:
        self._draw_candidates()
        self._plan()
        for e in range(self.r + 1):
            self._user_block(e, self.schedule.get(e, []))
            self.asked = None
            if e == self.r:
                break
            self._staff_block(e)
        self._recommendation()
        self._after_purchase()
        self._record_sample()

    # -- set-up ------------------------------------------------------------------------------------
    def _draw_candidates(self) -> None:
        """Candidates, their BF, the item the user likes (source of the preferences) and the preferences."""
        sim, C = self.sim, self.sim.C
        pool, n_own = sim.candidate_pool(self.k, self.exclude)
        P = len(pool)
        own = np.zeros(P, bool)
        own[:n_own] = True
        self.cands = Candidates(pool, own, C.item_vals[pool], C.item_price[pool], C.item_brand[pool])
        self.n_own = n_own
        self.bf = sim.P.profile_fit(self.u, self.cat.cid, C, pool)
        tw = np.exp(0.5 * self.bf[:n_own])
        self.taste_p = tw / tw.sum()
        target = int(self.rng.choice(n_own, p=self.taste_p))
        self.prefs = sim.preferences.draw(self.cat, self.cands, target)
        self.cf = np.zeros(P)
        self.fb = np.zeros(P)  # effect of the customer's reactions to shown items (synth.feedback)
        self.reaction = np.zeros(P)  # the signed reaction each candidate received
        self.kb = np.column_stack([self.cands.vals, C.item_brand[pool], C.item_brand[pool] * MAX_SERIES + C.item_series[pool]])
        self.just_linked = False  # the last staff block linked items: the next user block may react
        self.mentioned = np.isin(pool, list(self.linked)) if self.linked else np.zeros(P, bool)
        self.recent = np.zeros(P, bool)
        self.last_linked: list[int] = []  # candidates linked by the last linking staff turn
        self.n_link_turns = 0
        self.asked: str | None = None  # attribute the staff just asked about
        self.stated: set[int] = set()  # slots the user stated a preference on

    def _plan(self) -> None:
        """Number of exchanges after the purchase and the block in which each preference is said."""
        rng, E, prefs = self.rng, self.n_exchanges, self.prefs
        if E == 1:
            self.n_post = 0
        else:
            self.n_post = min(E - 1, int(rng.choice([0, 1, 2, 3], p=[.25, .45, .2, .1])) + max(0, (E - 14) // 4))
        self.r = r = E - 1 - self.n_post
        blocks = min(r + 1, len(prefs) + 3) if prefs else 1
        self.schedule: dict[int, list[Preference]] = {}
        if prefs:
            where = np.sort(rng.choice(blocks, size=min(len(prefs), blocks), replace=False))
            if len(prefs) > blocks:
                where = np.sort(np.concatenate([where, rng.integers(0, blocks, len(prefs) - blocks)]))
            for p, b in zip(prefs, where.tolist()):
                self.schedule.setdefault(b, []).append(p)
        self.category_word = self.d.pick(self.cat.spec.words)
        self.user_link = self.d.bern(0.15) and self.n_own > 0  # the user links an item browsed before

    # -- utterances --------------------------------------------------------------------------------
    def say(self, role: str, text: str, items=(), intent=None, recommend=None, pw=None) -> None:
        d, pool = self.d, self.cands.pool
        self.linked.update(int(pool[j]) for j in items)
        if role == "staff" and not text.endswith(("？", "?")) and d.bern(0.35):
            text = text.rstrip("~。") + d.pick(self.T.staff_tail)
        elif intent == "Inform Preference" and d.bern(0.3):
            text = d.pick(self.T.user_head) + text
        t = {"role": role, "text": text, "items": [self.sim.C.item_ids[pool[j]] for j in items], "intent": intent,
             "recommend": recommend}
        if role == "user":
            t["preference_words"] = pw or []
        self.turns.append(t)

    def say_preferences(self, prefs: list[Preference], lead_text: str = "", lead_pw=None) -> None:
        """One user utterance stating ``prefs`` (after ``lead_text``); their effects enter CF."""
        parts, pws = ([lead_text], list(lead_pw or [])) if lead_text else ([], [])
        for p in prefs:
            text, annots = p.render(self.d, self.T, self.last_linked, self.cands.price)
            np.add(self.cf, p.effect, out=self.cf)
            self.stated.add(p.slot)
            parts.append(text)
            pws.extend(annots)
        self.say("user", "，".join(parts), intent="Inform Preference", pw=pws)

    def _value_phrase(self, j_item: int) -> str:
        row = self.cands.vals[j_item]
        j = self.d.pick([j for j in self.cat.pref_slots if row[j] >= 0])
        return f"{self.cat.values[j][row[j]]}"

    # -- blocks ------------------------------------------------------------------------------------
    def _user_block(self, e: int, prefs: list[Preference]) -> None:
        d, T = self.d, self.T
        if e == 0:
            self._opening(prefs)
            return
        reacted = self.just_linked and feedback.react(self)
        self.just_linked = False
        if prefs:
            self.say_preferences(prefs)
        elif e < self.r and not reacted:
            if self.asked is not None and d.bern(0.4):
                self.say("user", d.pick(T.user_dont_care[1:3]).format(a=self.asked), intent="Don't care")
            else:
                self._user_filler()

    def _opening(self, prefs: list[Preference]) -> None:
        """Greeting (first episode), the category request, possibly a linked item and preferences."""
        d, T = self.d, self.T
        if self.e_no == 0 and d.bern(0.6):
            self.say("user", d.pick(T.user_greeting), intent="Other")
        req = d.pick(T.user_request if self.e_no == 0 else T.user_request_again).format(c=self.category_word)
        category_pw = [{"text": self.category_word, "type": "category"}]
        if self.user_link:
            j = int(self.rng.choice(self.n_own, p=self.taste_p))
            self.say("user", req + "，这款怎么样？", items=[j], intent="Inform Preference", pw=category_pw)
            self.mentioned[j] = self.recent[j] = True
            if prefs:
                self.say_preferences(prefs)
        elif prefs and d.bern(0.6):
            self.say_preferences(prefs, req, category_pw)
        else:
            self.say("user", req, intent="Inform Preference", pw=category_pw)
            if prefs:
                self.say_preferences(prefs)

    def _staff_block(self, e: int) -> None:
        d, T = self.d, self.T
        if e == 0 and self.e_no == 0:
            self.say("staff", d.pick(T.staff_greeting).format(shop=self.sim.C.shop_names[self.shop],
                                                                n=d.pick(T.staff_names)), recommend=False)
        p_link = (0.2 if e == 0 else P_MENTION) * MENTION_DECAY ** self.n_link_turns
        if d.bern(p_link) and self._link_items():
            return
        if d.bern(0.45):
            free = [j for j in self.cat.pref_slots if j not in self.stated]
            if free and d.bern(0.75):
                self.asked = self.cat.slots[d.pick(free)]
                self.say("staff", d.pick(T.staff_ask_attribute).format(a=self.asked), recommend=False)
            else:
                self.say("staff", d.pick(T.staff_ask_budget), recommend=False)
        else:
            self.say("staff", d.pick(T.staff_acknowledge), recommend=False)

    def _link_items(self) -> bool:
        """The staff links 1-3 own items not linked yet, by ``0.8 CF + 0.5 BF + Gumbel(0, STAFF_NOISE)``."""
        d = self.d
        avail = np.flatnonzero(self.cands.own & ~self.mentioned)
        if not len(avail):
            return False
        kk = 1 if d.bern(.7) else (2 if d.bern(.85) else 3)
        score = 0.8 * self.cf[avail] + 0.5 * self.bf[avail] + self.rng.gumbel(0, STAFF_NOISE, len(avail))
        pick = avail[np.argsort(-score, kind="stable")[:kk]].tolist()
        self.n_link_turns += 1
        self.recent[:] = False
        self.mentioned[pick] = True
        self.recent[pick] = True
        self.last_linked = pick
        self.just_linked = True
        v = self._value_phrase(pick[0])
        wordings = self.T.staff_link
        tpl = d.pick(wordings if len(pick) > 1 else wordings[:3] + wordings[4:])  # [3] speaks of several items
        self.say("staff", tpl.format(v=v), items=pick, recommend=True)
        return True

    def _user_filler(self) -> None:
        """Feedback on the last linked item, an attribute question, don't-care, a confirmation or chatter."""
        d, T, cat = self.d, self.T, self.cat
        last = self.last_linked
        x = d.u()
        if last and x < 0.3 and feedback.react(self, p=1.0):
            pass  # a (late) reaction to the last shown items, with its effect (synth.feedback)
        elif x < 0.62:
            j = d.pick(cat.pref_slots)
            a = cat.slots[j]
            self.say("user", d.pick(T.user_ask_attribute).format(a=a), intent="Request Attributes")
            if last:
                v = cat.values[j][self.cands.vals[last[-1], j]]
                self.say("staff", d.pick(T.staff_answer_attribute).format(a=a, v=v), recommend=False)
        elif x < 0.72:
            a = cat.slots[d.pick(cat.pref_slots)]
            self.say("user", d.pick(T.user_dont_care).format(a=a), intent="Don't care")
        elif x < 0.8:
            self.say("user", d.pick(T.user_confirm), intent="Confirmation")
        else:
            q, _a = d.pick(T.user_question_staff_answer)
            self.say("user", q, intent="Other")

    # -- purchase ----------------------------------------------------------------------------------
    def _recommendation(self) -> None:
        """IF, the purchase, and the staff turn recommending the bought item (the sample's turn)."""
        d, T, rng, C, pool = self.d, self.T, self.rng, self.sim.C, self.cands.pool
        if self.r > 0 and not self.schedule.get(self.r):
            if d.bern(0.6):
                self.say("user", d.pick(T.user_ask_recommendation), intent="Other")
            else:
                self._user_filler()
        self.sim_overlap = mean_overlap(self.kb, self.mentioned)
        self.if_ = W_MENTION * self.mentioned + W_RECENT * self.recent + W_SIM * self.sim_overlap + self.fb
        util = self.bf + self.cf + self.if_
        self.gumbel = rng.gumbel(0, TAU, len(pool))
        self.label = label = int(np.argmax(util + self.gumbel))
        if d.bern(0.3):
            self.say("staff", d.pick(T.staff_before_recommendation), recommend=False)
        rec_items = [label]
        if d.bern(0.35):
            others = [j for j in np.argsort(-util, kind="stable").tolist() if j != label and self.cands.own[j]]
            rec_items += others[:d.i(2) + 1]
            rec_items = [rec_items[j] for j in rng.permutation(len(rec_items)).tolist()]
        self.turn = len(self.turns)
        self.say("staff", d.pick(T.staff_recommend).format(v=self._value_phrase(label)), items=rec_items,
                 recommend=True)

    def _after_purchase(self) -> None:
        d, T = self.d, self.T
        for e in range(self.n_post):
            if e == 0 and d.bern(0.75):
                self.say("user", d.pick(T.user_buy), intent="Confirmation")
                self.say("staff", d.pick(T.staff_thanks), recommend=False)
            else:
                q, a = d.pick(T.user_question_staff_answer)
                self.say("user", q, intent="Other")
                self.say("staff", a.format(n=d.pick([20, 50, 100, 200])), recommend=False)

    def _record_sample(self) -> None:
        """The sample (candidates in random order) and its truth rows."""
        sim, pool, label = self.sim, self.cands.pool, self.label
        ids = sim.C.item_ids
        self.exclude.add(int(pool[label]))
        perm = self.rng.permutation(len(pool))
        sim.samples_out.append({"sample_id": self.sample_id, "session_id": self.session_id, "turn": self.turn,
                                "candidates": [ids[pool[j]] for j in perm.tolist()], "label_item": ids[pool[label]],
                                "split": None})
        sim.truth.append((self.sample_id, pool[perm], self.bf[perm], self.cf[perm], self.if_[perm],
                          self.gumbel[perm], self.mentioned[perm], self.recent[perm], self.sim_overlap[perm],
                          self.reaction[perm]))
