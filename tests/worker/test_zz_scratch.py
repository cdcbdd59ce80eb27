import time
from hpe_core import learning
from tests.worker.conftest import Loop, insert_closed_decisions, learning_state

def test_rate(rq_app):
    """scratch"""
    loop = Loop(rq_app)
    c = loop.create_config()
    t = time.monotonic()
    insert_closed_decisions(rq_app, c, 20000)
    print("insert", time.monotonic() - t)
    t = time.monotonic()
    with rq_app.extensions["hpe_sessions"]() as s:
        r = learning.learn_closed(s, c)
    print("first batch", time.monotonic() - t, r)
    with rq_app.extensions["hpe_sessions"]() as s:
        from hpe_core.models import Decision
        d = s.query(Decision).filter(Decision.learned_at.isnot(None)).first()
        print(d.context, d.eligible, d.probabilities, d.created_at, d.reward)
