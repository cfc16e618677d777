"""What the API and the worker share: settings, tables, storage and the job/dataset services."""
