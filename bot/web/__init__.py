"""The supervisor's console: a Telegram Mini App served by the bot's own process (Starlette on uvicorn).

``initdata`` checks the sign-in Telegram hands the page, ``app`` is the HTTP side (pages, the JSON API,
security headers, the per-person rate limit), ``server`` runs it on the bot's event loop. The rules
(who may see and do what) are the services' (``bot/services/console.py`` and the ones it calls).
"""
