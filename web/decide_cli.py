"""``hpe decide --config ID --input users.ndjson``: decisions for an audience of any size.

The file is read a chunk at a time (``--batch-size`` lines, 10,000 at most) and each
chunk goes through the batch endpoint's service
(:func:`hpe_core.deliver.touchpoints.decide_and_deliver_all`): the same checks, pipeline
and log as ``POST /{id}/decisions/batch``, one transaction per chunk. Memory holds one
chunk, whatever the file's size. Each answer is written as one NDJSON line, in input
order, with the input's line number and user id.
"""

from __future__ import annotations

import os
import sys
import time

import click
import orjson

#: One chunk = one transaction; the batch endpoint's limit is the most.
DEFAULT_BATCH = 1000


@click.command()
@click.option("--config", "config_id", required=True, type=click.UUID, help="Configuration id.")
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.File("rb"),
    help="NDJSON, one request a line: {user_id, channel, context?, candidates?, deliver?} "
    "('-': stdin).",
)
@click.option(
    "--output",
    "-o",
    type=click.File("wb"),
    default="-",
    show_default=True,
    help="NDJSON answers, one a line in input order ('-': stdout).",
)
@click.option(
    "--batch-size",
    default=DEFAULT_BATCH,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Requests per transaction.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Answer an invalid line with its errors and go on (default: stop at it).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def decide(config_id, input_file, output, batch_size, skip_invalid, quiet):
    """Decide for every user in an NDJSON file, as the batch endpoint would.

    Each chunk of --batch-size lines is decided and logged in one transaction, so an
    interrupted run keeps the chunks before it: the last answered line says where to
    resume. An invalid line stops the run before its chunk is decided (unless
    --skip-invalid). Deliveries asked for with `deliver` are queued like the API's.
    """
    from hpe_core.store.models import Config
    from hpe_core.tenancy.workspaces import Principal
    from plugins.cli import app_session

    with app_session(INLINE_SWEEPER=False) as (app, session):
        config = session.get(Config, config_id)
        if config is None:
            raise click.ClickException(f"No configuration {config_id}.")
        # The operator acts for the configuration's own workspace, with a secret key's rights.
        principal = Principal(workspace_id=config.workspace_id, actor="cli", kind="secret")
        session.commit()
        run = _Run(app, session, principal, config_id, output, skip_invalid)
        size = _size(input_file)
        started = time.perf_counter()
        with click.progressbar(
            length=size or 0,
            label="Deciding",
            file=sys.stderr,
            hidden=quiet or not size,
            show_pos=False,
        ) as bar:
            for chunk, consumed in _chunks(input_file, batch_size):
                run.decide(chunk)
                bar.update(consumed)
        output.flush()
        elapsed = time.perf_counter() - started
        click.echo(
            f"{run.answered:,} lines answered in {elapsed:.1f}s "
            f"({run.answered / max(elapsed, 1e-9):,.0f}/s): {run.logged:,} decisions logged, "
            f"{run.nothing:,} with nothing eligible, {run.invalid:,} invalid.",
            err=True,
        )


class _Run:
    """Decides chunks and writes their answers; counts what happened."""

    def __init__(self, app, session, principal, config_id, output, skip_invalid):
        from web.extensions import app_state

        self.session = session
        self.parts = app_state(app).touchpoints
        self.principal = principal
        self.config_id = config_id
        self.output = output
        self.skip_invalid = skip_invalid
        self.answered = self.logged = self.nothing = self.invalid = 0

    def decide(self, chunk: list[tuple[int, bytes]]) -> None:
        """Decide one chunk of ``(line number, text)``, in one transaction."""
        from marshmallow import ValidationError

        from hpe_core.deliver import touchpoints
        from hpe_core.errors import InvalidInput
        from web.api.batch_schemas import load_requests

        items, bad = [], {}
        for number, text in chunk:
            try:
                items.append((number, orjson.loads(text)))
            except orjson.JSONDecodeError as exc:
                bad[number] = {"json": [f"Not JSON: {exc}"]}
        try:
            requests = load_requests([item for _number, item in items])
        except ValidationError as exc:
            bad.update({items[index][0]: errors for index, errors in exc.messages.items()})
        if bad and not self.skip_invalid:
            number = min(bad)
            raise click.ClickException(
                f"line {number} is invalid: {orjson.dumps(bad[number]).decode()} "
                f"({self.answered:,} lines before it were answered and logged)."
            )
        while True:
            if bad:
                items = [(n, item) for n, item in items if n not in bad]
                requests = load_requests([item for _number, item in items])
            try:
                answers = (
                    touchpoints.decide_and_deliver_all(
                        self.session, self.parts, self.principal, self.config_id, requests
                    )
                    if requests
                    else []
                )
                break
            except InvalidInput as exc:  # what only the configuration can tell (a channel)
                index = next(iter(exc.errors.get("requests", {})), None)
                if index is None:
                    raise
                number = items[index][0]
                if not self.skip_invalid:
                    raise click.ClickException(
                        f"line {number} is invalid: {exc.message.partition(': ')[2]} "
                        f"({self.answered:,} lines before it were answered and logged)."
                    ) from exc
                bad[number] = exc.errors["requests"][index]
        by_line = {
            number: {"line": number, "user_id": item["user_id"], **answer}
            for (number, item), answer in zip(items, answers, strict=True)
        }
        for number in sorted(bad):
            by_line[number] = {"line": number, "errors": bad[number]}
        for number in sorted(by_line):
            self.output.write(orjson.dumps(by_line[number]) + b"\n")
        self.answered += len(by_line)
        self.invalid += len(bad)
        logged = sum(1 for answer in answers if answer["decision_id"] is not None)
        self.logged += logged
        self.nothing += len(answers) - logged


def _chunks(handle, size: int):
    """``(chunk, bytes read)``: up to ``size`` non-blank ``(line number, text)`` pairs."""
    chunk, consumed = [], 0
    for number, line in enumerate(handle, start=1):
        consumed += len(line)
        if not line.strip():
            continue
        chunk.append((number, line))
        if len(chunk) == size:
            yield chunk, consumed
            chunk, consumed = [], 0
    if chunk or consumed:
        yield chunk, consumed


def _size(handle) -> int | None:
    """The input's size in bytes for the progress bar (None for a pipe or stdin)."""
    try:
        stat = os.fstat(handle.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    import stat as stat_module

    return stat.st_size if stat_module.S_ISREG(stat.st_mode) else None
