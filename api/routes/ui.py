"""The dashboard: static pages served by the API itself, and /docs and /redoc with local assets.

Nothing is fetched from another host: the pages are plain HTML, CSS and JavaScript modules in
`api/ui/`, and Swagger UI and ReDoc are vendored there with their licences. The pages read the
same public JSON API as any client; they hold no data, so they need no token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
VENDOR = "/ui/static/vendor"

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui")
@router.get("/ui/")
@router.get("/ui/{page:path}")
def page(page: str = "") -> FileResponse:
    """Every dashboard path gets the same shell; its script picks the page from the path."""
    return FileResponse(UI_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs")
def swagger_ui():
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="finetune API",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


@router.get("/redoc")
def redoc():
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="finetune API",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url="data:,",
        with_google_fonts=False,
    )


def install_ui(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=UI_DIR), name="ui-static")
    app.include_router(router)
