import pytest
import torch

from memgen.bridge.episodes import ASKS, K_MAX, training_episodes
from memgen.bridge.heads import (
    DF_CHANNELS,
    WORD_FEATURES,
    Block,
    BridgeModel,
    TextMatcher,
    loss,
    name_word_inputs,
    sentence_word_spans,
    soft_replay,
    word_features,
)


@pytest.fixture(scope="module")
def episodes():
    """Every family, interleaved queries included, built in memory."""
    return (training_episodes(["mixed", "version", "discard", "distractor"], [2048], 3, domains=["travel"], seed=3)
            + training_episodes(["mixed"], [2048], 3, domains=["inventory"], seed=4, query_position="interleaved"))


def _certain(ep):
    """soft_replay's inputs when every reader is sure and right (from the IR's labels)."""
    E, Q = len(ep.events), len(ep.questions)
    p_type = torch.nn.functional.one_hot(torch.tensor(ep.event_type), 3).float()
    match = (torch.tensor(ep.query_key)[:, None] == torch.tensor(ep.named_keys)[None]).float()
    starts, ends = torch.tensor(ep.query_start), torch.tensor(ep.event_end)
    valid = (starts[:, None] < 0) | (ends[None] <= starts[:, None])
    p_ask = torch.nn.functional.one_hot(torch.tensor(ep.asks), len(ASKS)).float()
    p_k = torch.nn.functional.one_hot(torch.tensor([max(k - 1, 0) for k in ep.ks]), K_MAX).float()
    return p_type, match, valid, p_ask, p_k, E, Q


def test_soft_replay_of_certain_readers_is_the_ir_answer(episodes):
    checked = 0
    for ep in episodes:
        p_type, match, valid, p_ask, p_k, E, Q = _certain(ep)
        logp = soft_replay(p_type, match, valid, p_ask, p_k)
        assert logp.shape == (Q, E + 1)
        torch.testing.assert_close(logp.exp().sum(-1), torch.ones(Q))
        want = [g if g >= 0 else E for g in ep.gold]
        assert logp.argmax(-1).tolist() == want, ep.id
        assert (logp.max(-1).values > -1e-3).all()  # sure, not just right
        checked += Q
    assert checked > 100


def test_soft_replay_respects_the_query_position(episodes):
    ep = next(e for e in episodes if any(s >= 0 for s in e.query_start))
    p_type, match, valid, p_ask, p_k, E, _ = _certain(ep)
    logp = soft_replay(p_type, match, valid, p_ask, p_k)
    late = ~valid
    assert late.any() and (logp[:, :E].exp()[late] < 1e-5).all()


@pytest.mark.parametrize("mode", ["oracle", "text"])
@pytest.mark.parametrize("head", ["replay", "transformer"])
def test_every_head_gives_a_distribution_over_events_and_unknown(mode, head):
    torch.manual_seed(0)
    E, Q, L, D = 7, 3, 5, 16
    ids = torch.randint(0, 50, (E, L))
    qids = torch.randint(0, 50, (Q, L))
    ids[:, -1] = qids[:, -1] = -1
    b = Block(torch.randn(E, D), torch.randn(E, L, D), ids, torch.randn(Q, D), torch.randn(Q, L, D), qids,
              torch.arange(E) % 3, torch.tensor([0, 1, 2]), torch.ones(Q, E, dtype=torch.bool),
              ev_df=torch.rand(E, L, DF_CHANNELS), q_df=torch.rand(Q, L, DF_CHANNELS),
              words=torch.rand(Q, E, WORD_FEATURES), q_word_pieces=(torch.rand(Q, 4, L) < 0.3).float(),
              q_word_has=(torch.rand(Q, E, 4) < 0.5).float(), q_word_weight=torch.rand(Q, 4))
    logp, aux = BridgeModel(mode, head, D)(b)
    assert logp.shape == (Q, E + 1)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(Q))
    assert aux["ask"].shape == (Q, len(ASKS)) and aux["k"].shape == (Q, K_MAX)


def test_word_features_find_the_whole_name_and_miss_a_near_one():
    events = ["Keep in mind: max_connections on auth-valley-20 is 212738.",
              "Please record 142246 for max_connections on auth-valley-29.",
              "The value of max_connections on auth-valley-20 is not 544841.",
              "Entry for the log: heap_size_mb on queue-central-41 is set to 629009."]
    w = word_features(["What is max_connections on auth-valley-20 now?"], events)[0]  # (E, 5)
    assert w.shape == (4, WORD_FEATURES)
    assert w[0, 0] == 1.0 and w[0, 2] == 0.0  # every word of the question that any event holds
    assert w[1, 0] < 0.6 and w[1, 2] == 1.0  # the heaviest word (the host) is missing
    assert w[0, 1] > w[1, 1] > w[3, 1] and w[3, 0] <= w[1, 0]  # adjacent pairs: "on auth-valley-20"
    torch.testing.assert_close(w[:, 3], w[:, 0] - w[:, 0].max())  # relative to the best event
    assert not word_features(["Anything?"], []).numel()  # no events: nothing to match, no error


def test_word_features_ignore_edge_punctuation_and_case_but_not_inner_marks():
    w = word_features(["Where is Olga Engel's Antwerp trip?"],
                      ["OLGA ENGEL's Antwerp trip, by train.", "Olga Engel-Smith's Antwerp trip."])[0]
    assert w[0, 0] == 1.0 and w[1, 0] < 1.0


def test_sentence_word_spans_cut_each_word_out_of_the_text():
    text = "OLGA ENGEL's Antwerp trip, by train (BN-806)."
    spans = sentence_word_spans(text)
    assert [w for w, _, _ in spans] == ["olga", "engel", "antwerp", "trip", "by", "train", "bn-806"]
    assert all(text[a:b].lower() == w for w, a, b in spans)


def _pieces(text):
    """Character spans of a toy tokenizer's pieces: runs of letters, of digits, and single marks."""
    import re

    return [m.span() for m in re.finditer(r"[A-Za-z]+|[0-9]+|[^\sA-Za-z0-9]", text)]


def test_name_words_tell_a_host_one_digit_away_whole_word_for_whole_word():
    """A name one digit away shares most word pieces (auth, -, valley, -) but no whole word: the
    matcher's name-word features (tags all equal here) find every name word in the key's event and
    miss the heaviest in the near one's."""
    q = "What is max_connections on auth-valley-20 now?"
    events = ["Keep in mind: max_connections on auth-valley-20 is 212738.",
              "Please record 142246 for max_connections on auth-valley-29.",
              "Entry for the log: heap_size_mb on queue-central-41 is set to 629009."]
    texts = [q, *events]
    sp = [_pieces(t) for t in texts]
    L = max(map(len, sp))
    pieces, has, weight = name_word_inputs([q], [sp[0]], events, {"what": 1.0, "is": 0.9, "now": 1.0}, L)
    words = [w for w, _, _ in sentence_word_spans(q)]
    host = words.index("auth-valley-20")
    assert pieces.shape == (1, len(words), L) and pieces[0, host].sum() == 5  # auth - valley - 20
    assert has[0, :, host].tolist() == [1.0, 0.0, 0.0]
    assert weight[0, words.index("is")] == pytest.approx(0.1) and weight[0, host] == 1.0
    D = 8
    ids = torch.full((len(texts), L), -1)
    vocab: dict[str, int] = {}
    for r, (t, s) in enumerate(zip(texts, sp, strict=True)):
        ids[r, :len(s)] = torch.tensor([vocab.setdefault(t[a:b].lower(), len(vocab)) for a, b in s])
    E = len(events)
    b = Block(torch.randn(E, D), torch.randn(E, L, D), ids[1:], torch.randn(1, D), torch.randn(1, L, D), ids[:1],
              torch.tensor([0, 1, 2]), torch.tensor([0]), torch.ones(1, E, dtype=torch.bool),
              ev_df=torch.zeros(E, L, DF_CHANNELS), q_df=torch.zeros(1, L, DF_CHANNELS),
              words=word_features([q], events), q_word_pieces=pieces, q_word_has=has, q_word_weight=weight)
    m = TextMatcher(D)
    for layer in (m.tag, m.tag_df[-1]):  # every piece tagged alike: the words weigh by their weight alone
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    f = m.features(b)[0]  # (E, FEATURES)
    cov, miss, rel = (f[:, 16 + i] for i in range(3))
    assert cov[0] == pytest.approx(1.0) and miss[0] == 0.0 and rel[0] == 0.0
    assert cov[1] < 0.8 and miss[1] == 1.0 and rel[1] < -0.2  # the host, the heaviest word, is missing
    assert cov[2] < cov[1]


def test_text_mode_needs_word_features():
    torch.manual_seed(0)
    E, Q, L, D = 3, 2, 4, 8
    ids = torch.randint(0, 20, (E, L))
    b = Block(torch.randn(E, D), torch.randn(E, L, D), ids, torch.randn(Q, D), torch.randn(Q, L, D), ids[:Q],
              torch.arange(E), torch.arange(Q), torch.ones(Q, E, dtype=torch.bool),
              ev_df=torch.rand(E, L, DF_CHANNELS), q_df=torch.rand(Q, L, DF_CHANNELS))
    with pytest.raises(ValueError, match="word features"):
        TextMatcher(D)(b)


def test_match_loss_weighs_a_confident_wrong_match_most():
    """The focal match term: a negative matched at logit +6 costs more than a hundred at -6."""
    torch.manual_seed(0)
    E, Q, L, D = 101, 1, 4, 8
    ids = torch.randint(0, 20, (E, L))
    b = Block(torch.randn(E, D), torch.randn(E, L, D), ids, torch.randn(Q, D), torch.randn(Q, L, D), ids[:Q],
              torch.arange(E) + 1, torch.zeros(Q, dtype=torch.long), torch.ones(Q, E, dtype=torch.bool),
              ev_df=torch.rand(E, L, DF_CHANNELS), q_df=torch.rand(Q, L, DF_CHANNELS),
              words=torch.zeros(Q, E, WORD_FEATURES),
              ev_type=torch.zeros(E, dtype=torch.long), ask=torch.zeros(Q, dtype=torch.long),
              k=torch.full((Q,), -100), gold=torch.full((Q,), E))
    model = BridgeModel("text", "replay", D)

    def match_term(logits):
        model.matcher.forward = lambda _b: logits
        return loss(model, b)[1]["match"]

    easy = match_term(torch.full((Q, E), -6.0))
    one_wrong = match_term(torch.cat([torch.full((Q, E - 1), -6.0), torch.full((Q, 1), 6.0)], 1))
    assert one_wrong > 100 * easy


def test_renamed_questions_replace_the_asked_name_the_same_way_for_one_key(episodes):
    import random

    from memgen.bridge.train import renamed_questions
    from memgen.render.text.domain import key_surface

    rng = random.Random(0)
    words = ["silver", "harbor", "lamp", "quiet"]
    checked = 0
    for ep in episodes[:6]:
        got = renamed_questions(ep, rng, words)
        assert len(got) == len(ep.questions)
        by_key: dict[int, set[str]] = {}
        for (text, name), key, old in zip(got, ep.query_key, ep.questions, strict=True):
            if not name:
                assert text == ""
                continue
            surface = key_surface(ep.domain, key)
            assert name in text and surface.lower() not in text.lower() and surface.lower() in old.lower()
            by_key.setdefault(key, set()).add(name)
            checked += 1
        assert all(len(names) == 1 for names in by_key.values())
    assert checked > 20


def test_question_share_counts_each_question_once_per_domain():
    import math

    from memgen.bridge.cache import States
    from memgen.bridge.train import Encoded

    ids = torch.tensor([5, 6, 5, 7, 7, 7, 8], dtype=torch.int32)  # event [5, 6]; questions [5, 7], [7, 7, 8]
    states = States(torch.zeros(3, 4), torch.zeros(7, 4), ids, torch.tensor([0, 2, 4, 7]))
    ep = type("Episode", (), {"domain": "travel", "questions": ("a b", "b b c")})()
    enc = Encoded([ep], states, [([0], [1, 2])])
    share = enc.question_share("travel")
    assert not enc.question_share("accounts").any()  # no question of that domain here
    want = {5: math.log(2) / math.log(3), 6: 0.0, 7: 1.0, 8: math.log(2) / math.log(3)}
    assert {i: round(float(share[i]), 6) for i in want} == {i: round(v, 6) for i, v in want.items()}
    words = enc.word_share("travel")
    assert words["b"] == 1.0 and round(words["a"], 6) == round(math.log(2) / math.log(3), 6)


def test_word_features_discount_the_wording_common_to_the_questions():
    events = ["Record: backlog_size on proxy-south-34 is set to 561886.",
              "The value of backlog_size on proxy-south-34 is not 112123.",
              "Record: backlog_size on proxy-north-12 is set to 200.",
              "Record: heap_size_mb on cache-coast-73 is set to 300."]
    q = ["What is the current value of backlog_size on proxy-south-34?"]
    plain = word_features(q, events)[0]
    assert plain[0, 0] < plain[1, 0]  # "value" is rare among the events: it favours the distractor
    common = {"what": 0.95, "is": 0.95, "the": 0.95, "current": 0.9, "value": 0.9, "of": 0.95, "on": 0.9}
    told = word_features(q, events, common)[0]
    assert told[0, 0] > 0.8 and told[0, 2] < 0.2  # what the event misses ("value") weighs little now
    assert told[0, 0] - told[1, 0] > plain[0, 0] - plain[1, 0] + 0.5
    assert told[2, 0] < 0.5 and told[3, 0] < 0.1  # another host, another key
