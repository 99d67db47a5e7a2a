"""confirmation-web: the pages a confirmation link opens (SPEC §6).

`app.create_app(settings)` builds the aiohttp application; `rules` holds the decisions as plain
functions, `handlers` the database work of each action, `pages` the rendering, `views` the HTTP edge.
"""
