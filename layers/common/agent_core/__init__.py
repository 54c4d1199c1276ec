"""Shared code of every function: the Agent Protocol's models, errors and rules, and the adapters to AWS."""

API_PREFIX = "/ap/v1/agent"
VERSION = "0.5.1"
