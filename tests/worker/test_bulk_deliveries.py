"""A batch's deliveries reach RQ together (RQBackend.enqueue_deliveries): one Redis pipeline
per thousand jobs, each job exactly what enqueue_delivery makes; on real Redis."""

from __future__ import annotations

import uuid

from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from worker import jobs
from worker.queues import DELIVERY_QUEUE, RQBackend


def test_many_deliveries_are_queued_in_pipelines_as_single_ones_would_be(redis_url):
    backend = RQBackend(redis_url)
    ids = [uuid.uuid4() for _ in range(2500)]
    commands = []
    original = backend.redis.pipeline

    def counting_pipeline(*args, **kwargs):
        commands.append(1)
        return original(*args, **kwargs)

    backend.redis.pipeline = counting_pipeline
    backend.enqueue_deliveries([*ids, ids[0]])  # a repeated id is one job
    assert len(commands) == 3  # 1,000 + 1,000 + 500 jobs
    queue = Queue(DELIVERY_QUEUE, connection=backend.redis, serializer=JSONSerializer)
    assert queue.count == 2500
    single = uuid.uuid4()
    backend.enqueue_delivery(single)
    for delivery_id in (ids[0], ids[-1], single):
        job = Job.fetch(
            f"hpe-deliver-{delivery_id}", connection=backend.redis, serializer=JSONSerializer
        )
        assert job.func_name == f"{jobs.deliver.__module__}.{jobs.deliver.__name__}"
        assert job.args == [str(delivery_id)] or job.args == (str(delivery_id),)
        assert (job.timeout, job.result_ttl, job.failure_ttl) == (120, 3600, 7 * 86400)
