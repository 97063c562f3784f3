"""The Lambda entry point: ``handler.lambda_handler``, configured by ``PIPELINE_*`` environment variables.

The configuration is read and checked once, at import (the cold start): a bad value fails here with a
message naming the variable. boto3 is not imported here; only re-ingestion imports it, when it happens.
"""

from __future__ import annotations

import os

from pipeline.app import make_handler
from pipeline.config import Config
from pipeline.logs import configure_logging

CONFIG = Config.from_env(os.environ)
configure_logging(CONFIG.log_level)
lambda_handler = make_handler(CONFIG)
