"""The VW learner and the exploration command line, against the real vowpalwabbit."""

import collections
import math
import threading

import pytest
import vowpalwabbit

from hpe_core.decide.features import ActionCatalog, adf_example, context_features
from hpe_core.decide.policy import Learner, exploration_defaults, vw_arguments
from hpe_core.tenancy.settings import EXPLORATION_ALGORITHMS

CATALOG = ActionCatalog([{"id": f"offer-{i}", "features": {"kind": f"k{i % 2}"}} for i in range(4)])
ACTIONS = CATALOG.lines()
SEGMENTS = ("bargain", "premium", "new")


def _examples(count):
    """Logged uniform-random decisions where segment i only rewards action i."""
    out = []
    for n in range(count):
        segment = n % len(SEGMENTS)
        chosen = (n * 7 + n // 3) % len(ACTIONS)
        reward = 1.0 if chosen == segment else 0.0
        shared = context_features({"segment": SEGMENTS[segment], "hour": n % 24})
        out.append((shared, ACTIONS, chosen, reward, 1 / len(ACTIONS)))
    return out


def _probe(learner):
    return [learner.predict(context_features({"segment": s, "hour": 9}), ACTIONS) for s in SEGMENTS]


def test_vw_arguments_for_the_defaults():
    """The default settings give squarecb with the fixed base arguments."""
    assert vw_arguments({}) == (
        "--cb_explore_adf --cb_type mtr --quiet -b 18 -q ca -l 0.1 --power_t 0.5 "
        "--squarecb --gamma_scale 10.0"
    )
    assert vw_arguments(exploration_defaults()) == vw_arguments({})


@pytest.mark.parametrize(
    ("exploration", "tail"),
    [
        ({"algorithm": "squarecb", "gamma_scale": 100}, "--squarecb --gamma_scale 100.0"),
        ({"algorithm": "epsilon", "epsilon": 0.2}, "--epsilon 0.2"),
        ({"algorithm": "bag", "bag_size": 7, "epsilon": 0.1}, "--bag 7 --epsilon 0.1"),
        ({"algorithm": "cover", "cover_size": 3}, "--cover 3 --epsilon 0.05"),
    ],
)
def test_vw_arguments_per_algorithm(exploration, tail):
    """Each algorithm adds its own flags, after the learning-rate settings."""
    assert vw_arguments(exploration).endswith(" -l 0.1 --power_t 0.5 " + tail)


def test_vw_arguments_ignore_parameters_of_other_algorithms():
    """Same effective settings give the same string, whatever the key order or unused keys."""
    plain = vw_arguments({"algorithm": "squarecb", "learning_rate": 0.3})
    noisy = vw_arguments(
        {"epsilon": 0.3, "bag_size": 9, "learning_rate": 0.3, "algorithm": "squarecb"}
    )
    assert plain == noisy
    assert "-l 0.3 " in plain


def test_vw_arguments_reject_unknown_algorithm():
    """An algorithm VW does not know is refused rather than silently defaulted."""
    with pytest.raises(ValueError, match="Unknown exploration algorithm"):
        vw_arguments({"algorithm": "thompson"})


@pytest.mark.parametrize("algorithm", EXPLORATION_ALGORITHMS)
def test_every_algorithm_learns_the_best_action_per_segment(algorithm):
    """Each exploration algorithm runs in VW and ranks the rewarded action first."""
    learner = Learner(vw_arguments({"algorithm": algorithm}))
    for probabilities in _probe(learner):
        assert len(probabilities) == len(ACTIONS)
        assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-5)
    assert learner.learn_batch(_examples(600)) == 600
    for segment, probabilities in enumerate(_probe(learner)):
        assert max(range(len(ACTIONS)), key=probabilities.__getitem__) == segment


@pytest.mark.parametrize("algorithm", ["squarecb", "bag"])
def test_save_and_load_give_identical_predictions_and_learning(algorithm):
    """A reloaded model predicts exactly like the original and keeps learning identically."""
    args = vw_arguments({"algorithm": algorithm})
    original = Learner(args)
    original.learn_batch(_examples(300))
    reloaded = Learner.load(args, original.save())
    assert _probe(reloaded) == _probe(original)
    more = _examples(400)[300:]
    original.learn_batch(more)
    reloaded.learn_batch(more)
    assert _probe(reloaded) == _probe(original)


def test_learn_batch_equals_learning_the_same_text_with_plain_vw():
    """The fast path learns exactly what Workspace.learn learns from the same lines."""
    args = vw_arguments({})
    examples = _examples(200)
    ours = Learner(args)
    ours.learn_batch(examples)
    plain = vowpalwabbit.Workspace(args)
    for shared, actions, index, reward, probability in examples:
        plain.learn(adf_example(shared, actions, (index, -reward, probability)))
    for shared in (context_features({"segment": s, "hour": 9}) for s in SEGMENTS):
        assert ours.predict(shared, ACTIONS) == plain.predict([shared, *ACTIONS])


def test_learn_batch_rejects_the_whole_batch_on_one_bad_example():
    """A bad example anywhere leaves the model untouched and names its position."""
    learner = Learner(vw_arguments({}))
    before = _probe(learner)
    batch = _examples(5)
    batch[3] = (*batch[3][:4], 0.0)
    with pytest.raises(ValueError, match="Example 3: probability"):
        learner.learn_batch(batch)
    batch[3] = (batch[3][0], ACTIONS, 4, 1.0, 0.5)
    with pytest.raises(ValueError, match="Example 3: chosen index"):
        learner.learn_batch(batch)
    assert _probe(learner) == before


def test_predict_needs_actions():
    """Predicting over no actions is an error, not a VW crash."""
    with pytest.raises(ValueError):
        Learner(vw_arguments({})).predict(context_features({}), [])


def test_extreme_inputs_keep_the_model_finite():
    """Huge numbers in contexts and large rewards never turn predictions into NaN."""
    learner = Learner(vw_arguments({}))
    shared = context_features({"a": 1e300, "b": -(10**400), "c": 1e-300, "d": 5e11})
    learner.learn_batch([(shared, ACTIONS, i % 4, 1000.0 * (-1) ** i, 0.01) for i in range(50)])
    assert all(math.isfinite(p) for p in learner.predict(shared, ACTIONS))


def test_concurrent_use_is_serialized():
    """Threads sharing one learner get valid distributions (VW itself is not thread-safe)."""
    learner = Learner(vw_arguments({}))
    batch = _examples(30)
    errors = []

    def work():
        try:
            for _ in range(40):
                learner.learn_batch(batch[:3])
                for probabilities in _probe(learner):
                    assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-5)
        except Exception as exc:  # collected: an assert in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_learn_and_predict_do_vws_native_work_once_per_example(monkeypatch):
    """learn_batch and predict make one native parse, learn or predict, and finish per
    example, and build none of the Python ``Example`` objects that Workspace.learn/predict
    build for every line. (How fast that is: ``bench/exploration.py --throughput``.)"""
    args = vw_arguments({})
    examples = _examples(300)
    labelled = [adf_example(s, a, (i, -r, p)) for s, a, i, r, p in examples]
    shared = examples[0][0]
    ours, plain = Learner(args), vowpalwabbit.Workspace(args)
    calls = collections.Counter()

    def counting(cls, name):
        original = getattr(cls, name)

        def counted(*call_args, **call_kwargs):
            calls[name] += 1
            return original(*call_args, **call_kwargs)

        monkeypatch.setattr(cls, name, counted)

    for name in ("_parse", "learn_multi", "predict_multi", "_finish_example_multi_ex"):
        counting(vowpalwabbit.Workspace, name)
    counting(vowpalwabbit.Example, "__init__")

    assert ours.learn_batch(examples) == 300
    assert calls == {"_parse": 300, "learn_multi": 300, "_finish_example_multi_ex": 300}
    calls.clear()
    for _ in range(300):
        ours.predict(shared, ACTIONS)
    assert calls == {"_parse": 300, "predict_multi": 300, "_finish_example_multi_ex": 300}

    calls.clear()  # the counters see the conveniences' extra work: one Example per line
    for lines in labelled:
        plain.learn(lines)
    plain.predict([shared, *ACTIONS])
    assert calls["__init__"] == 301 * (1 + len(ACTIONS))
    assert calls["_parse"] == 301
