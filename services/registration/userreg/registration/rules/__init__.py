"""The rules of the registration API as plain functions: no I/O, no server, no database. Each
module holds one concern; import from it:

* `properties` — the property names the API gives a meaning to, and how a name is shown;
* `values` — a property's value as a column of each type stores it;
* `body` — a request body as the pairs of one JSON object;
* `schema` — an app's settings and Users schema as the checks see them; dynamic columns;
* `registration` — docs/api.md, register's checks of a new user, in their order;
* `credentials` — API keys, appIds, login bodies and who may log in;
* `status` — the user status machine;
* `webhook` — how the before-register webhook's answer is read.
"""
