"""The aiohttp shell: app, middleware, handlers of /v1 and /admin, CORS, serving."""
