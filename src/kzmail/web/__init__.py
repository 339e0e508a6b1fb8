"""The small web pages kzmail serves: the public unsubscribe service and the live preview.

The only place that uses starlette, uvicorn and h11.
"""
