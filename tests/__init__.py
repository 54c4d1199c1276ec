"""The test suite. Its package is imported before any conftest: the service name is set here, before agent_core's
Powertools loggers are made, as Lambda sets it before a function's first import (module loggers made under another
name would not share the service logger's handler and keys)."""

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "agent-api")
