"""The model-driven generator: tools the model works through, its prompt, and the loop."""

from bot.agent.loop import DEFAULT_MAX_ROUNDS, ModelGenerator

AnthropicGenerator = ModelGenerator

__all__ = ["DEFAULT_MAX_ROUNDS", "AnthropicGenerator", "ModelGenerator"]
