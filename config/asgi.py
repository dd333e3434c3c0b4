"""ASGI entry point: HTTP through Django, websockets through Channels.

Django's ASGI application is created first so that apps are loaded before the websocket
routing (which imports models) is imported.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.lifespan import lifespan  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from config.origins import SiteOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "lifespan": lifespan,
        "http": django_asgi_app,
        "websocket": SiteOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything imported so far lives as long as the process: moving it out of the collector's
# generations keeps full collections (and the latency tail they cause) short.
gc.collect()
gc.freeze()
