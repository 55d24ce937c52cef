"""Logging for `cogo serve`: uvicorn's own configuration plus the service's loggers. The access log is
cogo's JSON line per request (cogo.service.access, to stdout); uvicorn's access log is switched off."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG


def service_log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["cogo_json"] = {"format": "%(message)s"}
    config["handlers"]["cogo_access"] = {
        "formatter": "cogo_json",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["cogo.service.access"] = {"handlers": ["cogo_access"], "level": "INFO", "propagate": False}
    config["loggers"]["cogo.service"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
