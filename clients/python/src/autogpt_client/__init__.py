"""Client of the AutoGPT v0.5.1 agent API (Agent Protocol): `AutoGPTClient`, `AsyncAutoGPTClient`, their errors and
models. The `autogpt` command line is `autogpt_client.cli`."""

from .client import AsyncAutoGPTClient, AutoGPTClient
from .errors import (
    ArtifactNotFound,
    AutoGPTError,
    ConnectionFailed,
    Forbidden,
    InsufficientResources,
    InternalError,
    InvalidRequest,
    KeyNotFound,
    OpenAIAPIError,
    PayloadTooLarge,
    RateLimited,
    StepNotFound,
    TaskAlreadyRunning,
    TaskNotFound,
    Unauthorized,
)
from .models import AgentStatus, ApiKey, Artifact, CreatedKey, Run, Step, Task

__version__ = "0.5.1"
__all__ = [
    "AgentStatus",
    "ApiKey",
    "Artifact",
    "ArtifactNotFound",
    "AsyncAutoGPTClient",
    "AutoGPTClient",
    "AutoGPTError",
    "ConnectionFailed",
    "CreatedKey",
    "Forbidden",
    "InsufficientResources",
    "InternalError",
    "InvalidRequest",
    "KeyNotFound",
    "OpenAIAPIError",
    "PayloadTooLarge",
    "RateLimited",
    "Run",
    "Step",
    "StepNotFound",
    "Task",
    "TaskAlreadyRunning",
    "TaskNotFound",
    "Unauthorized",
]
