"""The catalogue exercises what it claims, in plain DRF: the comparisons are not trivial.

Each shape's tests demand that the cached twins answer what the plain view answers;
these tests pin down that the plain answers hold what makes a shape hard (hidden forms,
versioned links, kept ``?format=`` parameters, envelopes, DRF's own errors).
"""

from __future__ import annotations

from tests.transparency.compare import send
from tests.transparency.shapes import BY_NAME, Data, get, html


def plain(api, shape_name: str, req, data: Data):
    return send(api, "plain", BY_NAME[shape_name], req, data)


def test_the_browsable_api_hides_forms_the_user_may_not_use(api, data: Data):
    other = plain(api, "read-not-edit", html("/{u[2].pk}/", 0), data)
    assert other.status == 200
    assert 'data-method="PUT"' not in other.body
    assert "Make a DELETE request" not in other.body
    own = plain(api, "read-not-edit", html("/{u[0].pk}/", 0), data)
    assert 'data-method="PUT"' in own.body
    assert "Make a DELETE request" in own.body
    assert f'value="{data.u[0].username}"' in own.body  # the form is prefilled


def test_versioned_links_carry_the_version(api, data: Data):
    for shape, target in (
        ("path-versioning", "pathver-links"),
        ("namespace-versioning", "nsv-links"),
    ):
        for version in ("v1", "v2"):
            body = plain(api, shape, get(f"/{version}/{{q[0].pk}}/"), data).body
            assert body["url"].startswith(f"http://testserver/{target}/{version}/questions/")
            assert body["choices"][0].startswith(f"http://testserver/{target}/{version}/choices/")
    assert plain(api, "path-versioning", get("/v3/"), data).status == 404


def test_hyperlinks_keep_the_format_of_the_request(api, data: Data):
    query = plain(api, "format-query-first", get("/{q[0].pk}/?format=json"), data).body
    assert query["url"].endswith("/?format=json")
    suffix = plain(api, "format-query-first", get("/{q[0].pk}.json"), data).body
    assert suffix["url"].endswith(".json")
    bare = plain(api, "format-query-first", get("/{q[0].pk}/"), data).body
    assert bare["url"].endswith(f"/api/questions/{data.q[0].pk}/")


def test_plain_answers_of_the_harder_shapes(api, data: Data):
    anonymous = plain(api, "me", get("/"), data)
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"]
    assert plain(api, "me", get("/", 0), data).body["id"] == data.u[0].pk
    assert plain(api, "soft-delete-user", get("/{u[1].pk}/"), data).status == 404
    assert plain(api, "soft-delete-question", get("/{q[1].pk}/"), data).status == 404
    assert plain(api, "object-permission-403", get("/{u[2].pk}/", 0), data).status == 403
    assert plain(api, "object-permission-404", get("/{u[2].pk}/", 0), data).status == 404
    enveloped = plain(api, "custom-paginator", get("/"), data)
    assert 'rel="next"' in enveloped.headers["Link"] and len(enveloped.body["data"]) == 2
    staff = plain(api, "serializer-per-user", get("/{u[1].pk}/", 2), data).body
    other = plain(api, "serializer-per-user", get("/{u[1].pk}/", 0), data).body
    assert set(staff) > set(other)
    assert plain(api, "list-queryset", get("/1/"), data).status == 404
    assert plain(api, "range-queryset", get("/?page=2"), data).body["results"][0] == {
        "value": 3,
        "square": 9,
    }
    missing = plain(api, "no-serializer-class", get("/"), data)
    assert missing.status is None and missing.body.startswith("raised AssertionError")
    assert plain(api, "get-queryset-list", get("/{q[0].pk}/"), data).status == 404
    assert plain(api, "django-filter", get("/?pub_date__gte=not-a-date"), data).status == 400
    mine = plain(api, "request-dependent", get("/{c[1].pk}/", 0), data).body["mine"]
    theirs = plain(api, "request-dependent", get("/{c[1].pk}/", 2), data).body["mine"]
    assert (mine, theirs) == (True, False)
