"""The browser edition at /web: the app hands each student the exported page (fastdiff/web/site.py),
which then computes on the student's own device. The folder is served with the cross-origin isolation
headers (fastdiff/web/serve.py), so the page may run WASM on several threads; before a site is exported,
/web says how to export one."""

from __future__ import annotations

import html
from pathlib import Path

from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..web.serve import ISOLATION_HEADERS

PATH = "/web"
DEFAULT_SITE = Path("site")  # where `fastdiff export web --out site` writes it, beside the checkout's app.py


class IsolatedFiles(StaticFiles):
    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.update(ISOLATION_HEADERS)
        return response


def not_exported(folder: Path):
    message = (
        f"<h1>FastDiff in the browser</h1><p>No exported site in {html.escape(str(folder))}. Export it once "
        f"with <code>python -m fastdiff export web --out {html.escape(str(folder))}</code> and restart the app "
        "(docs/web.md).</p>"
    )

    async def page(request):
        return HTMLResponse(message, status_code=404)

    return page


def web_routes(folder: Path) -> list:
    """Starlette routes for PATH: the site in folder, or a page saying how to export it."""
    if (Path(folder) / "site.json").is_file():
        return [Mount(PATH, app=IsolatedFiles(directory=folder, html=True))]
    page = not_exported(Path(folder))
    return [Route(PATH, page), Route(PATH + "/{rest:path}", page)]
