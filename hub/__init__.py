"""ClientHub core: storage, pipeline, routing, job queue, Bitrix24 delivery, HTTP and CLI."""

__version__ = "0.1.0"
