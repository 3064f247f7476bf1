"""What the app accepts from a request, checked once for every route: ids in URLs and
query strings within the range of an id column, no NUL character anywhere in a query or
a form, JSON bodies that parse without unbounded nesting, and bodies of bounded size.

Fields a service reads are checked again there, with a message by the field
(social.text); this is the net under every route, so that no route, present or future,
can hand the database a value it cannot take and answer with a 500.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from social.text import unstorable
from webapp.services.values import MAX_ID, parse_id


class IdConverter(IntegerConverter):
    """The `int` of our routes: a positive id that fits an id column, else a 404."""

    def __init__(self, map, fixed_digits: int = 0, min: int = 1, max: int = MAX_ID):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max)


def id_field(values: MultiDict, name: str) -> int | None:
    """The id in a query string or form field: None when absent or empty.

    :raise BadRequest: a value that is not an id, named in the message.
    """
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    number = parse_id(raw)
    if number is None:
        raise BadRequest(f"“{name}” must be a whole number from 1 to {MAX_ID}.")
    return number


def read_body(limit: int) -> bytes:
    """The request body, read with a bound whether the sender gave its length (refused
    before reading) or sent it in chunks (reading stops one byte past the bound).

    :raise RequestEntityTooLarge: a body over limit bytes.
    """
    request.max_content_length = limit + 1
    data = request.get_data(cache=True)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def json_body(limit: int) -> Any:
    """The request's JSON body (at most limit bytes), parsed.

    :raise BadRequest: saying what is wrong with it. :raise RequestEntityTooLarge:
    """
    data = read_body(limit)
    try:
        return json.loads(data)
    except RecursionError:
        raise BadRequest("The JSON is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not JSON: {exc}") from None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deeply to parse is bad JSON (a 400)
    rather than a RecursionError (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


def _first_unstorable(values: MultiDict) -> tuple[str, str] | None:
    for key, value in values.items(multi=True):
        for part in (key, value):
            if isinstance(part, str) and (problem := unstorable(part)):
                return key, problem
    return None


def init_app(app: Flask) -> None:
    """Bounded ids in every route, the JSON provider, and the NUL check of every request."""
    app.url_map.converters["int"] = IdConverter
    app.json = JSONProvider(app)

    @app.before_request
    def refuse_unstorable_text():
        """A query or form value no database can store is refused before any view runs."""
        found = _first_unstorable(request.args)
        if found is None and request.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            found = _first_unstorable(request.form)
        if found:
            key, problem = found
            raise BadRequest(f"The field “{key[:40]}” {problem}: remove it and try again.")
