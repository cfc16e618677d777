"""The worker's Celery app (`celery -A worker.celery_app worker`, or `finetune worker`)."""

from core.config import get_settings
from core.queue import make_celery

app = make_celery(get_settings())
app.conf.include = ["worker.tasks"]
