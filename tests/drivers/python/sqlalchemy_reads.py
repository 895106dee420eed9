"""SQLAlchemy: the dialect's first-connect queries, ORM reads (with a
relationship loaded by join and by select-in), streamed results (a
server-side cursor) and reflection through the Inspector and
MetaData.reflect, on psycopg2 and on psycopg 3.
"""

from decimal import Decimal

from sqlalchemy import (
    ForeignKey,
    MetaData,
    Text,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, ENUM, JSONB
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

from steps import DSN, check, check_eq, finish, step

URL = DSN.replace("postgresql://", "postgresql+psycopg2://", 1)
URL3 = DSN.replace("postgresql://", "postgresql+psycopg://", 1)


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    tags = mapped_column(ARRAY(Text))
    mood = mapped_column(ENUM("calm", "busy", "away", name="mood", create_type=False))
    profile = mapped_column(JSONB)
    balance: Mapped[Decimal]
    orders: Mapped[list["Order"]] = relationship(back_populates="person")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    amount: Mapped[Decimal]
    person: Mapped[Person] = relationship(back_populates="orders")


def engine(url=URL, **kw):
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10}, **kw)


def connect():
    e = engine()
    try:
        with e.connect() as c:
            check_eq(1, c.execute(text("select 1")).scalar(), "select 1")
            check(e.dialect.server_version_info >= (12,), "server version")
    finally:
        e.dispose()


def orm_reads():
    e = engine()
    try:
        with Session(e) as s:
            p = s.get(Person, 3)
            check_eq("person 3", p.name, "get")
            check_eq("busy", s.scalars(select(Person.mood).where(Person.id == 4)).one(), "mood")
            people = s.scalars(select(Person).where(Person.balance > 50).order_by(Person.id)).all()
            check_eq(8, len(people), "filtered")
            check_eq(3, len(s.scalars(select(Person).limit(3)).all()), "limit")
            n = s.scalar(select(func.count()).select_from(Order).where(Order.amount > 10))
            check_eq(32, n, "count")
            check_eq(3, p.profile["level"], "jsonb")
    finally:
        e.dispose()


def orm_relationships():
    e = engine()
    try:
        with Session(e) as s:
            people = s.scalars(select(Person).options(selectinload(Person.orders)).order_by(Person.id)).all()
            check_eq(40, sum(len(p.orders) for p in people), "orders via selectinload")
            o = s.scalars(select(Order).options(joinedload(Order.person)).where(Order.id == 5)).one()
            check_eq("person 6", o.person.name, "joinedload")
            lazy = s.get(Person, 2)
            check(len(lazy.orders) > 0, "lazy load")
    finally:
        e.dispose()


def orm_transaction():
    e = engine()
    try:
        with Session(e) as s, s.begin():
            check_eq(12, s.scalar(select(func.count(Person.id))), "count in transaction")
            with s.begin_nested():
                check_eq(40, s.scalar(select(func.count(Order.id))), "count in savepoint")
    finally:
        e.dispose()


def stream_results():
    e = engine()
    try:
        with e.connect() as c:
            r = c.execution_options(stream_results=True, max_row_buffer=4).execute(
                text("select o.id, p.name from orders o join people p on p.id = o.person_id")
            )
            check_eq(40, sum(1 for _ in r), "streamed rows")
    finally:
        e.dispose()


def reflection(url):
    e = engine(url)
    try:
        i = inspect(e)
        check_eq(["orders", "people"], sorted(i.get_table_names()), "tables")
        check_eq(["people_summary"], i.get_view_names(), "views")
        cols = {c["name"]: c for c in i.get_columns("people")}
        check_eq(
            ["balance", "birthday", "created_at", "extra", "home", "id", "mood", "name", "profile", "scores", "tags"],
            sorted(cols),
            "columns",
        )
        check_eq(["id"], i.get_pk_constraint("people")["constrained_columns"], "primary key")
        fks = i.get_foreign_keys("orders")
        check_eq("people", fks[0]["referred_table"], "foreign key")
        check_eq(["people_name_idx"], [x["name"] for x in i.get_indexes("people")], "indexes")
        check_eq(["away", "busy", "calm"], sorted(i.get_enums()[0]["labels"]), "enum labels")
        check(i.get_view_definition("people_summary"), "view definition")
        check_eq("who orders", i.get_table_comment("people")["text"], "comment")
        md = MetaData()
        md.reflect(e, views=True)
        check_eq(["orders", "people", "people_summary"], sorted(md.tables), "reflected")
    finally:
        e.dispose()


step("sqlalchemy.connect", connect)
step("sqlalchemy.orm_reads", orm_reads)
step("sqlalchemy.orm_relationships", orm_relationships)
step("sqlalchemy.orm_transaction", orm_transaction)
step("sqlalchemy.stream_results", stream_results)
step("sqlalchemy.reflection_psycopg2", lambda: reflection(URL))
step("sqlalchemy.reflection_psycopg", lambda: reflection(URL3))
finish()
