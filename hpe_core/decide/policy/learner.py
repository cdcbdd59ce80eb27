"""A contextual-bandit learner: one Vowpal Wabbit workspace behind a small, fast API.

Lines come from :mod:`hpe_core.decide.features`. The hot paths call VW's native parse, predict,
learn and finish methods directly: the ``Workspace.predict``/``learn`` conveniences wrap
every line in a Python ``Example`` object, which costs several times more than VW's own
work for a typical decision (measured on VW 9.11: ~75 us vs ~15 us per predict).
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence

import vowpalwabbit

#: ``(shared_line, action_lines, chosen_index, reward, probability)``
LearnExample = tuple[str, Sequence[str], int, float, float]


class Learner:
    """A VW ``--cb_explore_adf`` model that predicts action probabilities and learns rewards.

    VW is not thread-safe: every method takes the learner's lock, so one learner can be
    shared by threads, but they run one at a time. For parallel decisions, give each
    process (or thread) its own learner loaded from the same saved model.

    :param args: the VW command line, from :func:`hpe_core.decide.policy.vw_arguments`
    """

    def __init__(self, args: str, *, _extra: Sequence[str] = ()):
        self.args = args
        self._vw = vowpalwabbit.Workspace(arg_list=[*args.split(), *_extra])
        self._lock = threading.Lock()

    @classmethod
    def load(cls, args: str, data: bytes) -> Learner:
        """Rebuild a learner from :meth:`save` output; it can keep learning.

        :param args: the same command line the model was trained with
        :param data: the saved model
        :returns: a learner whose predictions equal the saved one's
        """
        # VW reads models only from files; the pybind build has no in-memory loader.
        with tempfile.TemporaryDirectory(prefix="hpe-vw-") as directory:
            path = os.path.join(directory, "model.vw")
            with open(path, "wb") as handle:
                handle.write(data)
            return cls(args, _extra=("-i", path))

    def save(self) -> bytes:
        """Serialize the model, including the optimizer state needed to resume learning.

        VW 9 saves in ``--save_resume`` form by default, so a loaded model continues
        exactly as this one would.

        :returns: the model bytes, to store as a model version
        """
        with tempfile.TemporaryDirectory(prefix="hpe-vw-") as directory:
            path = os.path.join(directory, "model.vw")
            with self._lock:
                self._vw.save(path)
            with open(path, "rb") as handle:
                return handle.read()

    def predict(self, shared_line: str, action_lines: Sequence[str]) -> list[float]:
        """Return the exploration distribution over the actions, in their given order.

        :param shared_line: from :func:`hpe_core.decide.features.context_features`
        :param action_lines: from :class:`hpe_core.decide.features.ActionCatalog`, at least one
        :returns: one probability per action, summing to 1
        :raises ValueError: if there are no actions
        """
        if not action_lines:
            raise ValueError("Predict needs at least one action.")
        text = shared_line + "\n" + "\n".join(action_lines)
        vw = self._vw
        with self._lock:
            examples = vw._parse(text)
            try:
                vw.predict_multi(examples)
                return examples[0].get_action_scores()
            finally:
                # Returns the examples to VW's pool; skipping it leaks them.
                vw._finish_example_multi_ex(examples)

    def learn_batch(self, examples: Iterable[LearnExample]) -> int:
        """Learn many logged decisions with their rewards, in order.

        The whole batch is validated before VW sees any of it, so a bad example leaves
        the model untouched and the batch can be fixed and retried as a unit.

        :param examples: ``(shared_line, action_lines, chosen_index, reward, probability)``
            tuples; the probability is the logged propensity of the chosen action
        :returns: how many examples were learned
        :raises ValueError: naming the first invalid example's position
        """
        texts = []
        for position, (shared, actions, index, reward, probability) in enumerate(examples):
            if not 0 <= index < len(actions):
                raise ValueError(f"Example {position}: chosen index {index} out of range.")
            if not (isinstance(reward, int | float) and math.isfinite(reward)):
                raise ValueError(f"Example {position}: reward must be finite, got {reward!r}.")
            if not (isinstance(probability, int | float) and 0.0 < probability <= 1.0):
                raise ValueError(
                    f"Example {position}: probability must be in (0, 1], got {probability!r}."
                )
            # VW minimizes cost, so cost is the negated reward.
            label = f"0:{-float(reward)!r}:{float(probability)!r} "
            texts.append(
                "\n".join([shared, *actions[:index], label + actions[index], *actions[index + 1 :]])
            )
        vw = self._vw
        with self._lock:
            for text in texts:
                parsed = vw._parse(text)
                try:
                    vw.learn_multi(parsed)
                finally:
                    vw._finish_example_multi_ex(parsed)
        return len(texts)

    def close(self) -> None:
        """Release VW's memory; the learner cannot be used afterwards."""
        with self._lock:
            self._vw.finish()

    def __enter__(self) -> Learner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
