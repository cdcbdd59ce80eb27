"""Alembic environment: runs against the engine HPE hands over (see hpe_core.store.db)."""

from alembic import context

from hpe_core.store.models import Base

config = context.config
engine = config.attributes.get("engine")

if engine is None:  # pragma: no cover - HPE always passes its engine
    raise RuntimeError("Run migrations through `hpe db upgrade`, which supplies the database.")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
