"""The agent: one OpenAI tool-calling turn per step (`loop`), the model providers (`llm`), and the tools."""
