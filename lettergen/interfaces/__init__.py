"""The interfaces on top: the command line, the HTTP service and the batch runner."""
