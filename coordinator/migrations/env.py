"""Alembic environment: the coordinator passes its open connection in
``config.attributes["connection"]``; ``alembic -x db=URL upgrade head`` works too."""

from alembic import context
from sqlalchemy import create_engine

from octobot.coordinator.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from octobot.coordinator.store import normalize_db_url

    with create_engine(normalize_db_url(context.get_x_argument(as_dictionary=True)["db"])).begin() as conn:
        run(conn)
