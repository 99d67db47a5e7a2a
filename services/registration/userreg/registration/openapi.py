"""The OpenAPI 3 document of the registration service, built from `routes.ROUTES` (served at
`GET /openapi.json`). Each operation lists every HTTP status it can answer, with the API codes
behind each."""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from typing import Any

from userreg.registration import errors
from userreg.registration.routes import ROUTES, ErrorSpec, Route

TITLE = "userreg registration API"
VERSION = "1.0.0"

PARAMETERS: dict[str, str] = {
    "appId": "The application's id (a GUID, any case).",
    "apiKey": "The application's REST API key, or its server API key.",
    "identity": "The value of the user's identity property (compared case-insensitively).",
    "objectId": "The user's objectId.",
    "token": "A `user-token`, as a login or a guest registration returned it.",
}
HEADERS: dict[str, str] = {
    "user-token": "The `user-token` of the session, as a login or a guest registration returned it.",
}

_NULLABLE_INT = {"type": "integer", "nullable": True}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        "additionalProperties": False,
    },
    "RegistrationBody": {
        "type": "object",
        "description": "The user's properties. `password` and the identity property (by default "
        "`email`) are needed; `objectId` names a guest to convert. Values are "
        "strings, numbers, booleans or null.",
        "properties": {
            # null is a value like any other (no value): only the password must be a string.
            "email": {"type": "string", "nullable": True},
            "password": {"type": "string"},
            "name": {"type": "string", "nullable": True},
            "blUserLocale": {"type": "string", "nullable": True},
            "objectId": {"type": "string", "nullable": True},
        },
        "additionalProperties": True,
    },
    "User": {
        "type": "object",
        "description": "Every stored property of the user, plus these system properties.",
        "required": [
            "objectId",
            "ownerId",
            "created",
            "updated",
            "userStatus",
            "lastLogin",
            "blUserLocale",
            "socialAccount",
            "___class",
        ],
        "properties": {
            "objectId": {"type": "string"},
            "ownerId": {"type": "string"},
            "created": {"type": "integer", "description": "epoch milliseconds"},
            "updated": {"type": "integer", "description": "epoch milliseconds"},
            "userStatus": {"type": "string", "enum": ["ENABLED", "DISABLED", "EMAIL_CONFIRMATION_PENDING", "GUEST"]},
            "lastLogin": {**_NULLABLE_INT, "description": "epoch milliseconds"},
            "blUserLocale": {"type": "string"},
            "socialAccount": {"type": "string", "enum": ["BACKENDLESS"]},
            "___class": {"type": "string", "enum": ["Users"]},
        },
        "additionalProperties": True,
    },
    "LoggedInUser": {
        "allOf": [
            {"$ref": "#/components/schemas/User"},
            {"type": "object", "required": ["user-token"], "properties": {"user-token": {"type": "string"}}},
        ],
    },
    "LoginBody": {
        "type": "object",
        "required": ["login", "password"],
        "properties": {"login": {"type": "string"}, "password": {"type": "string"}},
    },
    "StatusBody": {
        "type": "object",
        "required": ["userStatus"],
        "properties": {"userStatus": {"type": "string", "enum": ["ENABLED", "DISABLED"]}},
    },
    "UserChanges": {
        "type": "object",
        "description": "The properties to change; the others keep their values. The server's own "
        "properties may be sent back unchanged (the SDKs send the whole user).",
        "properties": {
            "email": {"type": "string", "nullable": True},
            "password": {"type": "string"},
            "name": {"type": "string", "nullable": True},
            "blUserLocale": {"type": "string", "nullable": True},
        },
        "additionalProperties": True,
    },
    "PasswordBody": {
        "type": "object",
        "required": ["password"],
        "properties": {"password": {"type": "string", "minLength": 1}},
    },
    "PasswordCheck": {
        "type": "object",
        "required": ["valid"],
        "properties": {"valid": {"type": "boolean"}},
    },
    "UserClassProps": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name", "type", "required", "identity", "defaultValue", "dataSize"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["STRING", "TEXT", "INT", "DOUBLE", "BOOLEAN", "DATETIME"]},
                "required": {"type": "boolean"},
                "identity": {"type": "boolean"},
                "defaultValue": {"nullable": True},
                "dataSize": _NULLABLE_INT,
            },
        },
    },
    "Boolean": {"type": "boolean"},
    "AppInfo": {
        "type": "object",
        "required": [
            "appId",
            "appName",
            "identityProperty",
            "registrationEnabled",
            "emailConfirmationRequired",
            "loggers",
        ],
        "properties": {
            "appId": {"type": "string"},
            "appName": {"type": "string"},
            "identityProperty": {"type": "string"},
            "registrationEnabled": {"type": "boolean"},
            "emailConfirmationRequired": {"type": "boolean"},
            "loggers": {"type": "array", "items": {"type": "object"}, "maxItems": 0},
        },
    },
    "ConfirmationURL": {
        "type": "object",
        "required": ["confirmationURL"],
        "properties": {"confirmationURL": {"type": "string"}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
    "Ready": {
        "type": "object",
        "required": ["status", "database", "broker"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "database": {"type": "string", "enum": ["ok", "unreachable"]},
            "broker": {"type": "string", "enum": ["ok", "unreachable"]},
        },
    },
    "Metrics": {"type": "string", "description": "Prometheus text exposition format"},
    "OpenAPIDocument": {"type": "object"},
    "Page": {"type": "string", "description": "An HTML page"},
    "Script": {"type": "string", "description": "JavaScript"},
}


def _error_statuses(specs: tuple[ErrorSpec, ...]) -> dict[int, list[type[errors.ApiError]]]:
    by_status: dict[int, list[type[errors.ApiError]]] = defaultdict(list)
    for spec in specs:
        cls, status = spec if isinstance(spec, tuple) else (spec, spec.status)
        if cls not in by_status[status]:
            by_status[status].append(cls)
    return by_status


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if route.success_schema is None:
        responses["200"] = {"description": "Done (empty body)"}
    else:
        responses["200"] = {
            "description": "OK",
            "content": {route.success_media_type: {"schema": {"$ref": f"#/components/schemas/{route.success_schema}"}}},
        }
    for status, schema, description in route.other_responses:
        responses[str(status)] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    for status, classes in sorted(_error_statuses(route.errors).items()):
        codes = "; ".join(f"{cls.code}: {cls.default_message}" for cls in sorted(classes, key=lambda c: c.code))
        responses[str(status)] = {
            "description": codes,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    if route.description:
        operation["description"] = route.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PARAMETERS[name],
            "schema": {"type": "string", "minLength": 1},
        }
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters += [
        {"name": name, "in": "header", "required": False, "description": HEADERS[name], "schema": {"type": "string"}}
        for name in route.headers
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.request_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{route.request_schema}"}}},
        }
    return operation


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document (built once; callers must not modify it)."""
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for route in ROUTES:
        paths[route.path][route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Backendless-compatible user registration. Every error is "
            '`{"code": <int>, "message": "<text>"}`; codes 2002–8000 are Backendless\' '
            "own, 9xxx are this project's: "
            + "; ".join(f"{cls.code} {cls.default_message}" for cls in errors.ERRORS if cls.code >= 9000)
            + ". "
            "Every path under `/{appId}/{apiKey}` answers CORS: a preflight (`OPTIONS` with "
            "`Access-Control-Request-Method`) gets 204, and every answer, errors included, "
            "`Access-Control-Allow-Origin` for the origins of the app's `allowedOrigins`.",
        },
        "paths": dict(paths),
        "components": {"schemas": SCHEMAS},
    }
