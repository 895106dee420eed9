"""Django: settings made in this script (USE_TZ=True, django.contrib.postgres
installed, whose connection hook looks up hstore and citext), the backend's
connection setup (the session time zone), inspectdb, ORM reads on the
existing tables (filters, aggregates, select_related, iterator() over a
server-side cursor, nested atomic blocks) and the introspection API.
"""

import io

from steps import check, check_eq, dsn_parts, finish, step

import django
from django.conf import settings

p = dsn_parts()
settings.configure(
    DEBUG=False,
    USE_TZ=True,
    TIME_ZONE="Europe/Paris",
    INSTALLED_APPS=["django.contrib.postgres"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": p["dbname"],
            "USER": p["user"],
            "PASSWORD": p["password"],
            "HOST": p["host"],
            "PORT": str(p["port"]),
            "OPTIONS": {"connect_timeout": 10},
            "CONN_MAX_AGE": 0,
        }
    },
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from django.contrib.postgres.fields import ArrayField  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, models, transaction  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402


class Person(models.Model):
    name = models.TextField()
    tags = ArrayField(models.TextField())
    scores = ArrayField(models.IntegerField(), null=True)
    mood = models.TextField(null=True)
    profile = models.JSONField(null=True)
    created_at = models.DateTimeField()
    birthday = models.DateField(null=True)
    balance = models.DecimalField(max_digits=12, decimal_places=2, null=True)

    class Meta:
        app_label = "drivers"
        db_table = "people"
        managed = False


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    person = models.ForeignKey(Person, on_delete=models.DO_NOTHING, related_name="orders")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    placed_at = models.DateTimeField()
    note = models.TextField(null=True)

    class Meta:
        app_label = "drivers"
        db_table = "orders"
        managed = False


def fresh(fn):
    """Each step on a connection of its own, as each request of a Django
    application with CONN_MAX_AGE = 0 gets."""

    def run():
        try:
            fn()
        finally:
            connections.close_all()

    return run


def connect():
    with connection.cursor() as cur:
        cur.execute("select 1")
        check_eq((1,), cur.fetchone(), "select 1")
    check(connection.pg_version >= 120000, "server version")


def orm_reads():
    p3 = Person.objects.get(pk=3)
    check_eq("person 3", p3.name, "get")
    check_eq(["tag3", "all"], p3.tags, "array field")
    check_eq(3, p3.profile["level"], "json field")
    check(p3.created_at.tzinfo is not None, "aware datetime")
    check_eq(8, Person.objects.filter(balance__gt=50).count(), "filter count")
    check_eq(
        ["person 1", "person 10"],
        list(Person.objects.filter(tags__contains=["all"]).order_by("name").values_list("name", flat=True)[:2]),
        "array contains",
    )
    check_eq(4, Person.objects.filter(profile__level__lte=4).count(), "json lookup")


def orm_aggregates_and_joins():
    total = Order.objects.aggregate(n=Count("id"), s=Sum("amount"))
    check_eq(40, total["n"], "count")
    per_person = Order.objects.values("person").annotate(n=Count("id")).order_by("person")
    check_eq(40, sum(x["n"] for x in per_person), "annotate")
    check_eq(12, len(per_person), "groups")
    o = Order.objects.select_related("person").get(pk=5)
    check_eq("person 6", o.person.name, "select_related")
    rows = list(Order.objects.prefetch_related("person").order_by("id"))
    check_eq(12, len({x.person.name for x in rows}), "prefetch_related")
    check_eq(5, Order.objects.filter(person__mood="calm", amount__lt=20).count(), "join filter")


def orm_iterator():
    # A server-side cursor (DECLARE ... WITH HOLD / FETCH) outside a
    # transaction, as a Django view streaming a large queryset does.
    n = sum(1 for _ in Order.objects.order_by("id").iterator(chunk_size=7))
    check_eq(40, n, "iterated orders")


def orm_atomic():
    with transaction.atomic():
        check_eq(12, Person.objects.count(), "count in atomic")
        with transaction.atomic():
            check_eq(40, Order.objects.count(), "count in nested atomic")
        with transaction.atomic():
            n = sum(1 for _ in Person.objects.iterator(chunk_size=5))
            check_eq(12, n, "iterator in atomic")


def inspectdb():
    out = io.StringIO()
    call_command("inspectdb", "people", "orders", "people_summary", stdout=out)
    text = out.getvalue()
    check("class People(models.Model):" in text, "People model")
    check("class Orders(models.Model):" in text, "Orders model")
    check("models.ForeignKey(People" in text, "foreign key")
    out = io.StringIO()
    call_command("inspectdb", "--include-views", stdout=out)
    check("class PeopleSummary(models.Model):" in out.getvalue(), "view model")


def introspection():
    intro = connection.introspection
    with connection.cursor() as cur:
        names = sorted(t.name for t in intro.get_table_list(cur))
        check_eq(["orders", "people", "people_summary"], names, "table list")
        cols = [c.name for c in intro.get_table_description(cur, "people")]
        check_eq("id", cols[0], "first column")
        constraints = intro.get_constraints(cur, "orders")
        check(any(c["foreign_key"] for c in constraints.values()), "foreign key")
        check_eq(("id", "people"), intro.get_relations(cur, "orders")["person_id"], "relations")
        seqs = intro.get_sequences(cur, "people")
        check_eq("people_id_seq", seqs[0]["name"], "sequence")


step("django.connect", fresh(connect))
step("django.orm_reads", fresh(orm_reads))
step("django.orm_aggregates_and_joins", fresh(orm_aggregates_and_joins))
step("django.orm_iterator", fresh(orm_iterator))
step("django.orm_atomic", fresh(orm_atomic))
step("django.inspectdb", fresh(inspectdb), timeout=40)
step("django.introspection", fresh(introspection))
finish()
