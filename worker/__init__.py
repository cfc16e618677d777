"""The Celery shell around `model/`: tasks load a row, call the engine, record the outcome."""
