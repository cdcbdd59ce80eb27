"""Pagination of SQLAlchemy queries for flask-smorest's ``@blp.paginate``."""

from __future__ import annotations

from flask_smorest import Page
from sqlalchemy import func, select

from web.extensions import db_session


class SQLCursorPage(Page):
    """Pages a ``Select``: one COUNT query for the total, then LIMIT/OFFSET for the items."""

    @property
    def item_count(self):
        statement = select(func.count()).select_from(self.collection.order_by(None).subquery())
        return db_session().scalar(statement)

    @property
    def items(self):
        # Past the last page there is nothing to fetch, and a huge page number would make
        # an OFFSET the database cannot hold (SQLite: 64-bit overflow; PostgreSQL: bigint).
        if self.page_params.first_item >= self.page_params.item_count:
            return []
        statement = self.collection.limit(self.page_params.page_size).offset(
            self.page_params.first_item
        )
        return list(db_session().scalars(statement))
