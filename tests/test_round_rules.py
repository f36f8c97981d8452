"""Round rules shared by both backends (``mpigc.core.policy``) and the decoder hook rank 0 frees memory by."""
from __future__ import annotations

import numpy as np

from mpigc.codes import make_scheme
from mpigc.codes.base import split_parts
from mpigc.codes.partial import answered_combination
from mpigc.config import CodeConfig
from mpigc.core.policy import RoundPolicy


def _code(**kw) -> CodeConfig:
    base = dict(scheme="partial", name=None, chunks=None, load=3, parts=2, assignment=None, ordering="natural",
                decode="exact", deadline=None, transport="request", use_partial=True, rescale=False)
    base.update(kw)
    return CodeConfig(**base)


def _request_round(m: int = 6, seed: int = 3):
    """A request-transport round in which every note arrived: (scheme, instructions, answers, truth)."""
    scheme = make_scheme(_code(), m, seed)
    rng = np.random.default_rng(seed)
    grads = {i: rng.standard_normal(40) for i in range(scheme.plan.chunks)}
    decoder = scheme.decoder()
    for w in range(m):
        for p in range(len(scheme.plan.orders[w])):
            decoder.add(w, p)
    assert decoder.exact
    instructions = decoder.instructions()
    answers = {w: scheme.answer(rows, grads) for w, rows in instructions.items()}
    truth = split_parts(np.sum(list(grads.values()), axis=0), scheme.plan.parts)
    return scheme, decoder, instructions, answers, truth


def _decode(comb, answers) -> np.ndarray:
    return sum(comb.weights[:, [j]] * answers[w] for j, (w, _) in enumerate(comb.keys))


def test_every_answer_decodes_exactly_as_the_scheme_says():
    scheme, decoder, instructions, answers, truth = _request_round()
    ours = answered_combination(instructions, answers, scheme.plan.chunks, scheme.plan.parts)
    assert ours.exact and ours.coef_error < 1e-20
    assert np.allclose(_decode(ours, answers), truth)
    assert np.allclose(_decode(decoder.combination(), answers), truth)


def test_missing_answers_leave_an_honest_approximate_decode():
    scheme, _, instructions, answers, truth = _request_round()
    late = sorted(answers)[:2]
    came = {w: v for w, v in answers.items() if w not in late}
    comb = answered_combination(instructions, came, scheme.plan.chunks, scheme.plan.parts)
    assert not comb.exact and 0 < comb.coef_error < 1
    assert {w for w, _ in comb.keys} == set(came)
    # the reported coef_error is that of the coefficients applied to the answers that came
    rows = np.zeros((len(comb.keys), scheme.plan.chunks * scheme.plan.parts))
    for j, (w, _) in enumerate(comb.keys):
        for chunk, weights in instructions[w]:
            rows[j, chunk * scheme.plan.parts:(chunk + 1) * scheme.plan.parts] += weights
    phi = comb.weights @ rows
    target = np.zeros_like(phi)
    for k in range(scheme.plan.parts):
        target[k, k::scheme.plan.parts] = 1.0
    assert np.isclose(comb.coef_error, np.sum((phi - target) ** 2) / np.sum(target ** 2))
    nothing = answered_combination(instructions, {}, scheme.plan.chunks, scheme.plan.parts)
    assert not nothing.used and not nothing.exact


def test_answers_are_due_at_the_timeout_or_a_tenth_of_it_after_the_instructions():
    policy = RoundPolicy(approx=True, deadline=0.05, timeout=1.0)
    assert policy.cutoff == 0.05
    assert policy.answers_due(0.05) == 1.0  # an early decode: the round's timeout bounds the second phase
    assert np.isclose(policy.answers_due(1.0), 1.1)  # a decode at the timeout still gives workers time to answer


def test_a_frozen_chunk_needs_no_other_message():
    scheme = make_scheme(_code(transport="stream", parts=1, load=3), 6, 1)
    decoder = scheme.decoder()
    orders = scheme.plan.orders
    (w0, p0) = (0, 0)
    chunk = int(orders[w0][p0])
    other = next((w, int(np.flatnonzero(orders[w] == chunk)[0])) for w in range(1, 6) if chunk in orders[w])
    assert decoder.add(w0, p0)  # l = 1: the first message freezes its chunk, as a block
    assert decoder.needs((w0, p0))
    assert decoder.add(*other) == [] and not decoder.needs(other)  # a surplus message can be freed


def test_an_unfinished_chunk_keeps_its_messages():
    scheme = make_scheme(_code(transport="stream", parts=2, load=3), 6, 1)
    decoder = scheme.decoder()
    assert decoder.add(0, 0) == []
    assert decoder.needs((0, 0))  # a deadline may still weigh it by least squares
    ablation = make_scheme(_code(transport="stream", parts=1, load=3, use_partial=False), 6, 1).decoder()
    assert ablation.add(0, 0) == [] and ablation.needs((0, 0))  # counted once its worker finishes
