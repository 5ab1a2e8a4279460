"""The catalogue: each shape is a plain view, the requests to compare, and the writes.

A request's ``path`` is a :meth:`str.format` template over the test data (``q``:
questions, ``c``: choices, ``u``: users, ``old``: what the writes replaced), appended
to the shape's URL (``/tp-<level>/<shape name>``). ``hits`` names the levels whose
warm answer (a 200 to a GET or HEAD, with rows in it) must come from the cache: that is what makes a
passing comparison more than "both served from the database".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.urls import include, path
from rest_framework.routers import SimpleRouter
from rest_framework.urlpatterns import format_suffix_patterns

from example.polls.models import Choice, Question
from tests.api.conftest import EPOCH, make_polls
from tests.transparency import views

BOTH = frozenset({"instance", "fast"})
INSTANCE = frozenset({"instance"})
NONE: frozenset[str] = frozenset()


# -- data -------------------------------------------------------------------------------------
@dataclass
class Data:
    """The rows of one test; writes change them (and the database) in place."""

    u: list[User]
    q: list[Question]
    c: list[Choice]
    old: defaultdict[str, str] = field(default_factory=lambda: defaultdict(lambda: "never-was"))

    def format(self, template: str) -> str:
        return template.format(u=self.u, q=self.q, c=self.c, old=self.old)


def make_data() -> Data:
    """5 questions of 2 choices, 3 users (user i voted for choices i and i+1).

    User 1 is deactivated, user 2 is staff, question 1 is soft-deleted ("[deleted] ...").
    Made without signals, so the cache starts cold.
    """
    polls = make_polls(questions=5, choices=2, users=3, votes=2)
    data = Data(polls.users, polls.questions, polls.choices)
    User.objects.filter(pk=data.u[1].pk).update(is_active=False)
    data.u[1].is_active = False
    User.objects.filter(pk=data.u[2].pk).update(is_staff=True)
    data.u[2].is_staff = True
    deleted = f"[deleted] {data.q[1].question_text}"
    Question._base_manager.filter(pk=data.q[1].pk).update(question_text=deleted)
    data.q[1].question_text = deleted
    return data


# -- writes (through the ORM, so the signal receivers run on commit) -----------------------------
Write = Callable[[Data], Any]


def retitle(index: int, text: str | None = None) -> Write:
    def write(data: Data) -> None:
        question = data.q[index]
        question.question_text = text or f"{question.question_text} (edited)"
        question.save()

    return write


def new_question(data: Data) -> None:
    data.q.append(
        Question.objects.create(question_text="Question new?", pub_date=EPOCH + timedelta(days=1))
    )


def new_choice(index: int) -> Write:
    def write(data: Data) -> None:
        data.c.append(Choice.objects.create(question=data.q[index], choice_text="A new answer"))

    return write


def drop_choices(index: int) -> Write:
    def write(data: Data) -> None:
        for choice in Choice.objects.filter(question=data.q[index]):
            choice.delete()

    return write


def rename(index: int) -> Write:
    def write(data: Data) -> None:
        user = data.u[index]
        data.old[f"u{index}"] = user.username
        user.username = f"{user.username}-renamed"
        user.save()

    return write


def set_active(index: int, active: bool) -> Write:
    def write(data: Data) -> None:
        user = data.u[index]
        user.is_active = active
        user.save()

    return write


def vote(user: int, choice: int, add: bool = True) -> Write:
    def write(data: Data) -> None:
        voters = data.c[choice].voters
        (voters.add if add else voters.remove)(data.u[user])

    return write


# -- requests ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Req:
    path: str = "/"
    user: int | None = None
    """Index of the user to authenticate as (force_authenticate); None: anonymous."""
    method: str = "get"
    accept: str | None = None
    hits: frozenset[str] | None = None
    """Levels whose warm 200 must be a cache hit (None: the shape's default)."""
    follow: bool = False
    """Follow the ``next`` links of the body (cursor pagination)."""

    @property
    def browsable(self) -> bool:
        return self.accept == "text/html" or "format=api" in self.path or ".api" in self.path

    def __str__(self) -> str:
        who = "anonymous" if self.user is None else f"u{self.user}"
        accept = f" [{self.accept}]" if self.accept else ""
        return f"{self.method.upper()} {self.path} as {who}{accept}"


def get(path: str = "/", user: int | None = None, **options: Any) -> Req:
    return Req(path, user, **options)


def html(path: str = "/", user: int | None = None, **options: Any) -> Req:
    return Req(path, user, accept="text/html", **options)


def head(path: str = "/", user: int | None = None) -> Req:
    return Req(path, user, method="head")


def options(path: str = "/", user: int | None = None) -> Req:
    return Req(path, user, method="options", hits=NONE)


# -- routes -----------------------------------------------------------------------------------
Routes = Callable[[str, type], list[Any]]


def viewset_routes(name: str, view: type) -> list[Any]:
    router = SimpleRouter()
    router.register(name, view, basename=name)
    return format_suffix_patterns(router.urls)


def single_routes(name: str, view: type) -> list[Any]:
    return [path(f"{name}/", view.as_view(), name=name)]


def detail_routes(name: str, view: type) -> list[Any]:
    return [path(f"{name}/<pk>/", view.as_view(), name=name)]


def _unprefixed(name: str, view: type) -> list[Any]:
    router = SimpleRouter()
    router.register("", view, basename=name)
    return router.urls


def path_version_routes(name: str, view: type) -> list[Any]:
    return [path(f"{name}/<str:version>/", include(_unprefixed(name, view)))]


def namespace_version_routes(name: str, view: type) -> list[Any]:
    urls = _unprefixed(name, view)
    versions = [path(f"{version}/", include((urls, version))) for version in ("v1", "v2")]
    return [path(f"{name}/", include(versions))]


@dataclass(frozen=True)
class Shape:
    name: str
    view: type
    requests: tuple[Req, ...] = ()
    writes: tuple[Write, ...] = ()
    hits: frozenset[str] = BOTH
    keyed: bool = False
    """The output depends on the user: the fast twin declares ``rendered_context_key``."""
    routes: Routes = viewset_routes
    fast_unservable: bool = False
    """The fast path cannot serve it (no model): ``manage.py check`` must warn."""

    def hits_for(self, request: Req, level: str) -> bool:
        levels = self.hits if request.hits is None else request.hits
        if request.browsable:  # the fast path may leave the browsable API to plain DRF
            levels &= INSTANCE
        return ("fast" if level.startswith("fast") else level) in levels

    def __str__(self) -> str:
        return self.name


def _user_pages(*extra: Req) -> tuple[Req, ...]:
    """Own page, another user's page, anonymous, the list and the HTML pages."""
    return (
        get("/{u[0].pk}/", 0),
        get("/{u[2].pk}/", 0),
        get("/{u[0].pk}/", None),
        get("/", 0),
        html("/{u[0].pk}/", 0),
        html("/{u[2].pk}/", 0),
        *extra,
    )


def _by_name() -> tuple[Req, ...]:
    return (
        get("/{u[0].username}/"),
        get("/{old[u0]}/"),
        get("/nobody/"),
        get("/{u[2].username}/"),
        html("/{u[0].username}/"),
    )


_QUESTION_WRITES = (retitle(0), new_question)

SHAPES: tuple[Shape, ...] = (
    Shape(
        "questions",
        views.Questions,
        (get("/"), get("/{q[0].pk}/"), get("/999999/"), html("/{q[0].pk}/"), head("/{q[0].pk}/")),
        _QUESTION_WRITES,
    ),
    # get_object overrides
    Shape(
        "soft-delete-user",
        views.ActiveUsers,
        (
            get("/{u[0].pk}/", hits=INSTANCE),
            get("/{u[1].pk}/"),
            get("/"),
            html("/{u[0].pk}/", hits=INSTANCE),
            html("/{u[1].pk}/"),
        ),
        (set_active(0, False), set_active(1, True)),
    ),
    Shape(
        "soft-delete-question",
        views.LiveQuestions,
        (
            get("/{q[0].pk}/", hits=INSTANCE),
            get("/{q[1].pk}/"),
            get("/"),
            html("/{q[1].pk}/"),
            head("/{q[0].pk}/"),
        ),
        (retitle(0, "[deleted] gone now?"), retitle(1, "Back again?")),
    ),
    Shape(
        "me",
        views.Me,
        (
            get("/"),
            get("/", 0),
            get("/", 2),
            html("/", 0),
            head("/", 0),
            options("/", 0),
        ),
        (rename(0), vote(0, 4)),
        hits=NONE,
        routes=single_routes,
    ),
    Shape(
        "get-object-no-queryset",
        views.QuestionWithoutQueryset,
        (get("/{q[0].pk}/"), get("/999999/"), html("/{q[0].pk}/")),
        (retitle(0),),
        hits=NONE,
        routes=detail_routes,
    ),
    Shape(
        "get-object-get-queryset",
        views.AnsweredQuestion,
        (get("/{q[0].pk}/"), get("/{q[2].pk}/"), get("/999999/"), html("/{q[2].pk}/")),
        (drop_choices(0), retitle(2)),
        hits=INSTANCE,
        routes=detail_routes,
    ),
    # who sees what
    Shape(
        "per-user-queryset",
        views.MyVotes,
        (
            get("/", 0),
            get("/", 2),
            get("/{c[0].pk}/", 0),
            get("/{c[3].pk}/", 0),
            get("/"),
            html("/", 0),
        ),
        (vote(0, 4), vote(0, 0, add=False)),
    ),
    Shape(
        "serializer-per-action",
        views.QuestionsPerAction,
        (get("/"), get("/{q[0].pk}/"), html("/"), html("/{q[0].pk}/")),
        (retitle(0), new_choice(0)),
    ),
    Shape(
        "serializer-per-user",
        views.UsersPerRole,
        (
            get("/", 0),
            get("/", 2),
            get("/{u[1].pk}/", 0),
            get("/{u[1].pk}/", 2),
            get("/{u[1].pk}/"),
            html("/{u[1].pk}/", 2),
        ),
        (rename(1), vote(1, 5)),
    ),
    Shape("lookup-username", views.UsersByName, _by_name(), (rename(0),)),
    Shape("lookup-url-kwarg", views.UsersByNameKwarg, _by_name(), (rename(0),)),
    Shape(
        "lookup-url-kwarg-pk",
        views.QuestionsByKwarg,
        (get("/{q[0].pk}/"), get("/999999/"), get("/abc/"), html("/{q[0].pk}/")),
        (retitle(0),),
    ),
    Shape("object-permission-403", views.SelfOnlyUsers, _user_pages(), (rename(0),)),
    Shape("object-permission-404", views.HiddenUsers, _user_pages(), (rename(0),)),
    Shape(
        "read-not-edit",
        views.ReadOthersEditSelf,
        _user_pages(
            html("/", 0),
            options("/{u[2].pk}/", 0),
            options("/{u[0].pk}/", 0),
            head("/{u[2].pk}/", 0),
        ),
        (rename(2), vote(2, 5)),
    ),
    Shape(
        "request-dependent",
        views.MineChoices,
        (
            get("/", 0),
            get("/", 1),
            get("/"),
            get("/{c[1].pk}/", 0),
            get("/{c[1].pk}/", 2),
            html("/", 0),
        ),
        (vote(1, 0), vote(0, 1, add=False)),
        keyed=True,
    ),
    # pagination
    Shape(
        "page-number",
        views.PagedQuestions,
        (
            get("/"),
            get("/?page=2"),
            get("/?page=last"),
            get("/?page=99"),
            get("/?page_size=3&page=2"),
            html("/"),
            head("/"),
            options("/"),
        ),
        _QUESTION_WRITES,
    ),
    Shape(
        "limit-offset",
        views.OffsetQuestions,
        (
            get("/"),
            get("/?limit=2&offset=2"),
            get("/?limit=3&offset=1"),
            get("/?offset=100", hits=NONE),
            html("/?limit=2&offset=2"),
        ),
        _QUESTION_WRITES,
    ),
    Shape(
        "cursor",
        views.CursorQuestions,
        (get("/", follow=True), get("/?cursor=bogus"), html("/")),
        _QUESTION_WRITES,
    ),
    Shape(
        "custom-paginator",
        views.EnvelopedQuestions,
        (get("/"), get("/?page=2"), get("/?page=3"), get("/?page=9"), html("/?page=2")),
        _QUESTION_WRITES,
    ),
    # filter backends
    Shape(
        "search",
        views.SearchedQuestions,
        (
            get("/?search=Question+2"),
            get("/?search=answer+1"),
            get("/?search=zzz", hits=NONE),
            html("/?search=Question"),
        ),
        (retitle(2, "Something else?"), new_question),
    ),
    Shape(
        "ordering",
        views.OrderedQuestions,
        (
            get("/?ordering=-pub_date"),
            get("/?ordering=question_text"),
            get("/?ordering=bogus"),
            html("/?ordering=-pub_date"),
        ),
        (retitle(0, "Zebra?"), new_question),
    ),
    Shape(
        "django-filter",
        views.FilteredQuestions,
        (
            get("/?question_text=Question+2%3F"),
            get("/?pub_date__gte=2024-05-01T13:00:00Z"),
            get("/?pub_date__gte=2024-05-01T13:00:00Z&pub_date__lt=2024-05-01T15:00:00Z"),
            get("/?pub_date__gte=not-a-date"),
            html("/?pub_date__gte=2024-05-01T13:00:00Z"),
        ),
        (retitle(2, "Question 2? (edited)"), new_question),
    ),
    # links
    Shape(
        "path-versioning",
        views.PathVersionedQuestions,
        (
            get("/v1/"),
            get("/v2/"),
            get("/v1/{q[0].pk}/"),
            get("/v2/{q[0].pk}/"),
            get("/v3/"),
            html("/v2/{q[0].pk}/"),
        ),
        (retitle(0), new_choice(0)),
        routes=path_version_routes,
    ),
    Shape(
        "namespace-versioning",
        views.NamespaceVersionedQuestions,
        (
            get("/v1/"),
            get("/v2/"),
            get("/v1/{q[0].pk}/"),
            get("/v2/{q[0].pk}/"),
            html("/v2/{q[0].pk}/"),
        ),
        (retitle(0), new_choice(0)),
        routes=namespace_version_routes,
    ),
    Shape(
        "format-query-first",
        views.LinkedQuestions,
        (
            get("/?format=json"),
            get("/"),
            get(".json"),
            get("/{q[0].pk}/?format=json"),
            get("/{q[0].pk}/"),
            get("/{q[0].pk}.json"),
            get("/{q[0].pk}/?format=api"),
            get("/{q[0].pk}.api"),
            get("/", accept="application/json; indent=2"),
        ),
        (retitle(0), new_choice(0)),
    ),
    Shape(
        "format-plain-first",
        views.LinkedQuestions,
        (
            get("/"),
            get("/?format=json"),
            get("/{q[0].pk}/"),
            get("/{q[0].pk}.json"),
            get("/{q[0].pk}/?format=json"),
            get("/{q[0].pk}.api"),
            get("/{q[0].pk}/?format=api"),
            get(".json"),
            get("/?format=api"),
        ),
        (retitle(0), new_choice(0)),
    ),
    # no model
    Shape(
        "list-queryset",
        views.ListRows,
        (get("/"), get("/?page=2"), get("/1/"), html("/")),
        hits=NONE,
        fast_unservable=True,
    ),
    Shape(
        "range-queryset",
        views.RangeNumbers,
        (get("/"), get("/?page=3"), html("/")),
        hits=NONE,
        fast_unservable=True,
    ),
    Shape(
        "no-serializer-class",
        views.NoSerializerClass,
        (get("/"), get("/{q[0].pk}/")),
        hits=NONE,
        fast_unservable=True,
    ),
    Shape(
        "get-queryset-list",
        views.QuestionsAsList,
        (get("/"), get("/{q[0].pk}/"), html("/")),
        _QUESTION_WRITES,
        hits=NONE,
    ),
)

THROTTLED: tuple[Shape, ...] = (
    Shape("throttle-user", views.ThrottledPerUser),
    Shape("throttle-scoped", views.ThrottledPerScope),
)

BY_NAME = {shape.name: shape for shape in (*SHAPES, *THROTTLED)}
