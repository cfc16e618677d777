"""A small typed client for the finetune HTTP API (httpx), for scripts and notebooks.

from client import FinetuneClient
api = FinetuneClient()                      # FINETUNE_URL, FINETUNE_TOKEN
dataset = api.wait_for_dataset(api.upload_dataset("pets.zip")["id"])
job = api.create_job(dataset["id"], num_epochs=10)
for event, data in api.follow(job["id"]): ...
"""

from client.http import ClientError, FinetuneClient, ServiceUnreachable

__all__ = ["ClientError", "FinetuneClient", "ServiceUnreachable"]
